"""The import contracts in ``pyproject.toml`` (checked by ``lint-imports`` in ``./dev test``)
cover the whole tree: a new package of ``broker`` is not left out of the demo-wing rule."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The only parts of ``broker`` that may reach the demo wing: the CLI (``broker serve --demo``,
#: ``broker agreements`` demo commands) and ``python -m broker``, which starts the CLI.
MAY_IMPORT_DEMO = {"broker.cli", "broker.__main__", "broker.__init__"}


def _contracts() -> list[dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts: list[dict[str, object]] = config["tool"]["importlinter"]["contracts"]
    return contracts


def test_every_part_of_broker_but_the_cli_is_kept_from_the_demo_wing() -> None:
    (rule,) = [
        c for c in _contracts() if c["type"] == "forbidden" and c["forbidden_modules"] == ["demo"]
    ]
    children = {
        f"broker.{path.stem}"
        for path in (ROOT / "broker").iterdir()
        if (path.suffix == ".py" or (path / "__init__.py").exists())
    }
    assert set(rule["source_modules"]) | MAY_IMPORT_DEMO == children | {"adapters"}


def test_the_adapters_are_kept_from_all_of_broker_but_the_core() -> None:
    (rule,) = [
        c for c in _contracts() if c["type"] == "forbidden" and c["source_modules"] == ["adapters"]
    ]
    children = {
        f"broker.{path.stem}"
        for path in (ROOT / "broker").iterdir()
        if (path.suffix == ".py" or (path / "__init__.py").exists())
    }
    assert (
        set(rule["forbidden_modules"]) | {"broker.core", "broker.__main__", "broker.__init__"}
        == children
    )


def test_no_contract_ignores_an_import_or_allows_an_indirect_one() -> None:
    for contract in _contracts():
        assert "ignore_imports" not in contract, contract["name"]
        assert not contract.get("allow_indirect_imports", False), contract["name"]


def test_every_part_of_broker_has_its_layer() -> None:
    (rule,) = [c for c in _contracts() if c["type"] == "layers"]
    layers = rule["layers"]
    assert isinstance(layers, list)
    named = {name.strip() for layer in layers for name in str(layer).split(":")}
    children = {
        f"broker.{path.stem}"
        for path in (ROOT / "broker").iterdir()
        if (path.suffix == ".py" or (path / "__init__.py").exists())
    }
    assert children - {"broker.__main__", "broker.__init__"} <= named
    assert {"adapters", "demo"} <= named
