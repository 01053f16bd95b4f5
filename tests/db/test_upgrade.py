"""Databases made by the code of commit 2fb1d5a (``tests/fixtures/db``, see make_fixtures.py
there) upgrade to the newest schema with every row unchanged, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from broker.auth.registry import Registry
from broker.db.engine import build_engine
from broker.db.migrate import current_revision, is_current, upgrade

FIXTURES = Path(__file__).parent.parent / "fixtures" / "db"
SQLITE_FIXTURE = FIXTURES / "broker-2fb1d5a.sqlite"
PG_FIXTURE = FIXTURES / "broker-2fb1d5a.pg.sql"

Snapshot = dict[str, tuple[int, list[str]]]


def _load(database_url: str) -> Engine:
    """An engine on a copy of the fixture database for this engine kind."""
    if database_url.startswith("sqlite"):
        shutil.copyfile(SQLITE_FIXTURE, sa.engine.make_url(database_url).database or "")
        return build_engine(database_url, pool_size=2)
    engine = build_engine(database_url, pool_size=2)
    with engine.connect() as conn:
        driver = conn.connection.driver_connection
        assert driver is not None
        with driver.cursor() as cursor:
            cursor.execute(PG_FIXTURE.read_text())  # a script of plain statements, no parameters
        driver.commit()
    return engine


def _text(value: object) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _rows(conn: Connection, table: str, columns: list[str]) -> list[str]:
    quoted = ", ".join(f'"{c}"' for c in columns)
    rows = conn.exec_driver_sql(f'SELECT {quoted} FROM "{table}"').all()  # noqa: S608
    hashes = []
    for row in rows:
        canonical = json.dumps([[c, _text(v)] for c, v in zip(columns, row, strict=True)])
        hashes.append(hashlib.sha256(canonical.encode()).hexdigest())
    return sorted(hashes)


def snapshot(engine: Engine, columns: dict[str, list[str]] | None = None) -> Snapshot:
    """Per table: row count and the sorted hashes of its rows (columns sorted, values as text).
    ``columns`` limits each table to the columns named (those a database had before)."""
    result: Snapshot = {}
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        for table in sorted(inspector.get_table_names()):
            if table == "alembic_version" or (columns is not None and table not in columns):
                continue  # a table the database did not have before has no rows to compare
            names = sorted(c["name"] for c in inspector.get_columns(table))
            if columns is not None:
                names = [n for n in names if n in columns.get(table, [])]
            hashes = _rows(conn, table, names)
            result[table] = (len(hashes), hashes)
    return result


def _columns(engine: Engine) -> dict[str, list[str]]:
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        return {
            t: [c["name"] for c in inspector.get_columns(t)] for t in inspector.get_table_names()
        }


def test_the_fixture_databases_upgrade_without_loss(database_url: str) -> None:
    engine = _load(database_url)
    try:
        assert current_revision(engine) == "0007"  # the newest migration at 2fb1d5a
        before_columns = _columns(engine)
        before = snapshot(engine)
        assert set(before) >= {"parties", "clients", "consents", "audit_entries", "outbox"}
        assert all(count >= 2 for t, (count, _) in before.items() if t != "audit_head")

        upgrade(engine)

        assert is_current(engine)
        after = snapshot(engine, before_columns)
        assert set(after) >= set(before)
        for table, (count, hashes) in before.items():
            assert after[table][0] == count, f"{table}: {count} rows before, {after[table][0]}"
            assert after[table][1] == hashes, f"{table}: rows changed"
        # The stores read what the old code wrote.
        parties = Registry(engine).list_parties()
        assert [p.id for p in parties] == ["R9Z", "calderbridge-city-council", "west-calder-police"]
        assert Registry(engine).get_client("wcp-mash").status == "suspended"
    finally:
        engine.dispose()


def test_the_comparison_sees_a_changed_row(database_url: str) -> None:
    """The check above can fail: one changed value changes that table's row hashes."""
    engine = _load(database_url)
    try:
        before = snapshot(engine)
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE parties SET name = :n WHERE id = 'R9Z'"), {"n": "Renamed"})
        after = snapshot(engine)
        changed = {t for t in before if before[t] != after[t]}
        assert changed == {"parties"}
    finally:
        engine.dispose()
