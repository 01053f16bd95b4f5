"""``broker db ...``: the database schema, migrated by an explicit step (deploy/README.md)."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from broker.cli.common import EXIT_CHECK_FAILED, EXIT_USAGE, console, fail, print_json, settings
from broker.db import migrate
from broker.db.engine import build_engine

app = typer.Typer(help="The database schema (migrations).", no_args_is_help=True)


@app.command("upgrade")
def upgrade() -> None:
    """Migrate the configured database to the newest schema (what `serve` also does at start):
    run it once before starting upgraded instances."""
    engine = build_engine(settings().database_url, pooled=False)
    try:
        before = migrate.current_revision(engine)
        migrate.upgrade(engine)
        after = migrate.current_revision(engine)
    except SQLAlchemyError as e:
        fail(f"database unavailable: {type(e).__name__}", EXIT_USAGE)
    finally:
        engine.dispose()
    if before == after:
        console.print(f"schema already at {after}", highlight=False)
    else:
        console.print(f"schema migrated from {before or 'empty'} to {after}", highlight=False)


@app.command("status")
def status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The database's schema revision and this version's newest; exit 1 when they differ."""
    engine = build_engine(settings().database_url, pooled=False)
    try:
        current = migrate.current_revision(engine)
    except SQLAlchemyError as e:
        fail(f"database unavailable: {type(e).__name__}", EXIT_USAGE)
    finally:
        engine.dispose()
    head = migrate.head_revision()
    if as_json:
        print_json({"current": current, "head": head, "up_to_date": current == head})
    else:
        console.print(f"database {current or 'empty'}, this version {head}", highlight=False)
    if current != head:
        raise typer.Exit(EXIT_CHECK_FAILED)
