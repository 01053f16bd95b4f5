"""Run and inspect Alembic migrations programmatically (no alembic.ini needed).

Several instances may start together on one database: :func:`upgrade` runs under a lock, so one
migrates and the others, once they get the lock, find the schema current and do nothing.
PostgreSQL: ``pg_advisory_xact_lock`` on :data:`MIGRATION_LOCK_KEY`, taken in the transaction
that runs the migrations (released at its commit or rollback; PostgreSQL's DDL is
transactional). SQLite (one host): an exclusive ``flock`` on ``<database file>.migrate-lock``
beside the database file; an in-memory database needs none.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine, text

_SCRIPT_LOCATION = str(Path(__file__).parent / "migrations")


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", _SCRIPT_LOCATION)
    return config


#: The advisory lock key of migrations (a fixed 64-bit number: "isa-migr" in ASCII).
MIGRATION_LOCK_KEY = int.from_bytes(b"isa-migr", "big")


@contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    fd = os.open(f"{database}.migrate-lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released when closed
        yield
    finally:
        os.close(fd)


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest schema. Safe to run on every start, and from several
    instances at once (under the migration lock). A database that a newer version has already
    migrated is left as it is (see :func:`is_ahead`)."""
    config = _config()
    # Everything under the lock, the first read too: on a new SQLite file that read switches the
    # journal to WAL, which fails ("database is locked") while another instance migrates.
    with _sqlite_file_lock(engine):
        if is_ahead(engine):
            return
        _upgrade_locked(engine, config)


def _upgrade_locked(engine: Engine, config: Config) -> None:
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
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
