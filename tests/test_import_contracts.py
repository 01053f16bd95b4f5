"""The import contracts in ``pyproject.toml`` (checked by ``lint-imports`` in ``./dev test``)
cover the whole tree: a new package of ``broker`` is not left out of the demo-wing rule."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: The only parts of ``broker`` that may reach the demo wing: the CLI (``broker serve --demo``,
#: ``broker agreements`` demo commands) and ``python -m broker``, which starts the CLI.
MAY_IMPORT_DEMO = {"broker.cli", "broker.__main__", "broker.__init__"}


def _broker_children() -> set[str]:
    """``broker.<name>`` for every module and package directly in ``broker``."""
    return {
        f"broker.{path.stem}"
        for path in (ROOT / "broker").iterdir()
        if (path.suffix == ".py" or (path / "__init__.py").exists())
    }


def _contracts() -> list[dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts: list[dict[str, object]] = config["tool"]["importlinter"]["contracts"]
    return contracts


def test_every_part_of_broker_but_the_cli_is_kept_from_the_demo_wing() -> None:
    (rule,) = [
        c for c in _contracts() if c["type"] == "forbidden" and c["forbidden_modules"] == ["demo"]
    ]
    children = _broker_children()
    assert set(rule["source_modules"]) | MAY_IMPORT_DEMO == children | {"adapters"}


def test_the_adapters_are_kept_from_all_of_broker_but_the_core() -> None:
    (rule,) = [
        c for c in _contracts() if c["type"] == "forbidden" and c["source_modules"] == ["adapters"]
    ]
    children = _broker_children()
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
    children = _broker_children()
    assert children - {"broker.__main__", "broker.__init__"} <= named
    assert {"adapters", "demo"} <= named


def _lint_copy(tmp_path: Path, edits: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on a copy of the tree with ``edits`` (path -> line appended)."""
    for name in ("broker", "adapters", "demo"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for path, line in edits.items():
        with (tmp_path / path).open("a", encoding="utf-8") as f:
            f.write(f"\n{line}\n")
    lint = Path(sys.executable).parent / "lint-imports"
    return subprocess.run(
        [str(lint), "--no-cache"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    ("edits", "broken"),
    [
        pytest.param(
            {"broker/core/identifiers.py": "import sqlalchemy  # noqa"},
            "The pure core imports no web, SQL, validation or HTTP-client library",
            id="core-imports-sqlalchemy",
        ),
        pytest.param(
            {"broker/console/deps.py": "from broker.console import web  # noqa"},
            "No import cycles",
            id="console-cycle",
        ),
        pytest.param(
            {"broker/exchange/ports.py": "import broker.audit.log  # noqa"},
            "The exchange ports import no SQL or HTTP library",
            id="ports-reach-sql",
        ),
        pytest.param(
            {"broker/container.py": "import demo.console  # noqa"},
            "The demo wing is imported only by the CLI",
            id="production-imports-demo",
        ),
        pytest.param(
            {"broker/audit/log.py": "import broker.exchange.service  # noqa"},
            "Layers",
            id="audit-imports-exchange",
        ),
    ],
)
def test_each_rule_fails_when_its_import_comes_back(
    tmp_path: Path, edits: dict[str, str], broken: str
) -> None:
    done = _lint_copy(tmp_path, edits)
    assert done.returncode == 1, done.stdout[-2000:]
    assert "BROKEN" in done.stdout
    report = done.stdout.split("Broken contracts", 1)[1]
    assert broken in report, report[:2000]


def test_the_tree_as_committed_keeps_every_contract(tmp_path: Path) -> None:
    done = _lint_copy(tmp_path, {})
    assert done.returncode == 0, done.stdout[-2000:]
