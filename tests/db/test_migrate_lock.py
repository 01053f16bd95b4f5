"""Instances started together on one database migrate once: :func:`broker.db.migrate.upgrade`
runs under a lock (PostgreSQL: an advisory lock; SQLite: a file lock beside the database)."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from broker.db.engine import build_engine
from broker.db.migrate import MIGRATION_LOCK_KEY, is_current, upgrade

INSTANCES = 4


def test_instances_started_together_migrate_once(database_url: str) -> None:
    engines = [build_engine(database_url, pool_size=1) for _ in range(INSTANCES)]
    start = threading.Barrier(INSTANCES)
    errors: list[BaseException] = []

    def instance(index: int) -> None:
        start.wait()
        try:
            upgrade(engines[index])
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=instance, args=(i,)) for i in range(INSTANCES)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert is_current(engines[0])
        with engines[0].connect() as conn:
            versions = conn.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar()
        assert versions == 1
    finally:
        for engine in engines:
            engine.dispose()


@pytest.mark.postgres
def test_a_migration_waits_for_the_advisory_lock(pg_schema_url: str) -> None:
    """While another session holds the migration lock, an upgrade waits on it (seen in
    ``pg_locks``), and completes once it is released."""
    holder = build_engine(pg_schema_url, pool_size=1)
    engine = build_engine(pg_schema_url, pool_size=1)
    done = threading.Event()
    errors: list[BaseException] = []

    def migrate() -> None:
        try:
            upgrade(engine)
        except BaseException as e:  # reported below
            errors.append(e)
        finally:
            done.set()

    try:
        with holder.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
            thread = threading.Thread(target=migrate)
            thread.start()
            waiting = 0
            while waiting == 0 and not done.is_set():
                waiting = conn.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                        "AND NOT granted AND ((classid::bigint << 32) | objid::bigint) = :k"
                    ),
                    {"k": MIGRATION_LOCK_KEY},
                ).scalar_one()
            assert waiting == 1
            assert not done.is_set()
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
            conn.commit()
        thread.join()
        assert errors == []
        assert is_current(engine)
    finally:
        holder.dispose()
        engine.dispose()
