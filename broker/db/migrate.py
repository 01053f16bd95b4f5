"""Run and inspect Alembic migrations programmatically (no alembic.ini needed)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine

_SCRIPT_LOCATION = str(Path(__file__).parent / "migrations")


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", _SCRIPT_LOCATION)
    return config


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest schema. Safe to run on every start. A database that a
    newer version has already migrated is left as it is (see :func:`is_ahead`)."""
    if is_ahead(engine):
        return
    config = _config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def is_current(engine: Engine) -> bool:
    """True when the database is at the newest migration."""
    return current_revision(engine) == head_revision()


def is_ahead(engine: Engine) -> bool:
    """True when a newer version has migrated the database past this version's newest revision
    (one this version does not know). Migrations only add tables and columns until every
    instance runs the newer version, so an older instance keeps serving on the newer schema
    during a rolling upgrade (deploy/README.md, "Upgrades")."""
    current = current_revision(engine)
    if current is None:
        return False
    try:
        ScriptDirectory.from_config(_config()).get_revision(current)
    except CommandError:
        return True
    return False
