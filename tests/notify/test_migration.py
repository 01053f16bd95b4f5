"""Migration 0007 creates exactly the tables that broker/notify/tables.py and
broker/identity/tables.py describe, and downgrades cleanly."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

import broker.identity.tables
import broker.notify.tables  # noqa: F401  (registers the tables on the shared metadata)
from broker.db.tables import metadata

OURS = {"webhooks", "outbox", "identity_providers"}


def test_migration_matches_the_table_definitions(engine: Engine) -> None:
    assert set(inspect(engine).get_table_names()) >= OURS
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    assert [d for d in diffs if any(name in repr(d) for name in OURS)] == []
