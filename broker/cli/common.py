"""Helpers shared by CLI commands: settings, the registry, errors to exit codes, output."""

from __future__ import annotations

import contextlib
import getpass
import importlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console

from broker.auth.registry import Registry
from broker.core.errors import (
    BrokerError,
    ConfigurationError,
    Conflict,
    InvalidInput,
    NotFound,
)
from broker.core.published_keys import PUBLISHED_KEY_THUMBPRINTS
from broker.db import migrate
from broker.db.engine import build_engine
from broker.settings import Settings, load_settings

console = Console()
err_console = Console(stderr=True)

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2


def settings() -> Settings:
    try:
        return load_settings()
    except Exception as e:  # pydantic ValidationError: a bad BROKER_* variable
        fail(f"configuration: {e}", EXIT_USAGE)


def require_demo() -> None:
    """Fail clearly where the demo wing is not installed (the broker image leaves ``demo/`` out:
    deploy/Dockerfile). Commands import the demo only after this, never at start."""
    try:
        importlib.import_module("demo")
    except ImportError:
        fail(
            "the demo is not installed here (the broker image leaves it out); "
            "run the demo from a source checkout (./dev serve)",
            EXIT_USAGE,
        )


def actor() -> str:
    """Who an administrative change made from the command line is attributed to."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # pragma: no cover - no user database in some containers
        return "cli:unknown"


@contextlib.contextmanager
def registry(config: Settings) -> Iterator[Registry]:
    """The registry on the configured database (migrated), closed afterwards."""
    engine = build_engine(config.database_url, pooled=False)
    try:
        migrate.upgrade(engine)
        yield Registry(engine, PUBLISHED_KEY_THUMBPRINTS)
    finally:
        engine.dispose()


def fail(message: str, code: int = EXIT_CHECK_FAILED) -> NoReturn:
    err_console.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


@contextlib.contextmanager
def handled() -> Iterator[None]:
    """Turn broker errors into a message and the contract's exit code."""
    try:
        yield
    except InvalidInput as e:
        details = "; ".join(f"{p.location}: {p.message}" for p in e.problems)
        fail(f"{e.detail}" + (f" ({details})" if details else ""), EXIT_USAGE)
    except (ConfigurationError, NotFound) as e:
        fail(e.detail, EXIT_USAGE)
    except Conflict as e:
        fail(e.detail, EXIT_CHECK_FAILED)
    except BrokerError as e:
        fail(e.detail, EXIT_CHECK_FAILED)


def read_jwks_file(path: Path) -> dict[str, Any]:
    """A JSON key set read from ``path``; a usage failure when unreadable or not an object."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        fail(f"{path}: not a readable JSON key set ({e})", EXIT_USAGE)
    if not isinstance(value, dict):
        fail(f"{path}: not a JSON key set", EXIT_USAGE)
    return value


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, sort_keys=True, default=str))
