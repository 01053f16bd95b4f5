"""Migration 0003 creates exactly the tables that broker/audit/tables.py describes."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

import broker.audit.tables  # noqa: F401
from broker.db.tables import metadata

AUDIT_TABLES = {"audit_entries", "audit_nodes", "audit_head", "audit_checkpoints"}


def _about_audit(diff: object) -> bool:
    text = repr(diff)
    return any(name in text for name in AUDIT_TABLES)


def test_migration_matches_the_table_definitions(engine: Engine) -> None:
    assert set(inspect(engine).get_table_names()) >= AUDIT_TABLES
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    assert [d for d in diffs if _about_audit(d)] == []


def test_the_head_row_starts_empty(engine: Engine) -> None:
    with engine.connect() as conn:
        row = conn.exec_driver_sql("SELECT id, size, compact FROM audit_head").one()
    assert tuple(row) == (1, 0, b"")
