"""The reference in docs/ names every endpoint, command, setting and scope the code has."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import typer
from fastapi import APIRouter
from fastapi.routing import APIRoute

import broker.api
import broker.console
from broker.auth.scopes import Scope
from broker.cli.main import app as cli_app
from broker.settings import Settings

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _routes() -> list[tuple[str, str]]:
    found = []
    for package, prefix in ((broker.api, ""), (broker.console, "/console")):
        for info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            router = getattr(module, "router", None)
            if not isinstance(router, APIRouter):
                continue
            for route in router.routes:
                assert isinstance(route, APIRoute)
                found += [(method, prefix + route.path) for method in sorted(route.methods)]
    return found


def test_every_endpoint_is_in_docs_endpoints() -> None:
    text = (DOCS / "endpoints.md").read_text()
    routes = _routes()
    assert len(routes) > 40
    missing = [f"{m} {p}" for m, p in routes if f"`{m} {p}`" not in text]
    assert not missing


def _commands(command: object, path: str) -> list[str]:
    names = [path]
    commands: dict[str, object] = getattr(command, "commands", {})
    for name, sub in commands.items():
        names += _commands(sub, f"{path} {name}")
    return names


def test_every_command_is_in_docs_cli() -> None:
    text = (DOCS / "cli.md").read_text()
    commands = _commands(typer.main.get_command(cli_app), "broker")
    assert len(commands) > 40
    missing = [c for c in commands[1:] if f"`{c}`" not in text]
    assert not missing


def test_every_setting_is_in_docs_settings() -> None:
    text = (DOCS / "settings.md").read_text()
    documented = set(re.findall(r"`(BROKER_[A-Z0-9_]+)`", text))
    assert documented == {f"BROKER_{name.upper()}" for name in Settings.model_fields}


def test_every_scope_is_in_docs_scopes() -> None:
    text = (DOCS / "scopes.md").read_text()
    documented = set(re.findall(r"^\| `([a-z-]+)` \|", text, re.MULTILINE))
    assert documented == {scope.value for scope in Scope}
