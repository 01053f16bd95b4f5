"""What one exchange costs on disk and in CPU: the figures behind the sizing projection.

    .venv/bin/python -m bench.storage_per_exchange [--n 2000] [--postgres URL]

A demo broker (in this process, real HTTP on loopback) answers ``--n`` allowed exchanges of the
emergency-department scenario (each queues a provider notification, as in production). Then it
prints, per table, the rows and bytes each exchange added (PostgreSQL: ``pg_total_relation_size``,
tables with their indexes and TOAST; SQLite: the ``dbstat`` virtual table, pages in use), and the
broker process's CPU per exchange. With ``--postgres`` (or ``BROKER_TEST_DATABASE_URL``) it runs
on a fresh schema there too, dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from bench.exchange_parts import CLIENT, body
from broker.db.engine import normalise_url
from broker.observability import configure_logging
from demo.identity import register_demo_identity_provider
from demo.sources.runtime import start_demo_sources
from tests.support import demo_key, live_broker

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def _pg_schema(base: str) -> Iterator[str]:
    schema = f"bench_{secrets.token_hex(4)}"
    admin = sa.create_engine(normalise_url(base), poolclass=sa.pool.NullPool)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.engine.make_url(normalise_url(base)).update_query_dict(
        {"options": f"-csearch_path={schema}"}
    )
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _sizes(engine: sa.Engine) -> dict[str, tuple[int, int]]:
    """table -> (rows, bytes on disk with its indexes)."""
    out: dict[str, tuple[int, int]] = {}
    with engine.connect() as conn:
        tables = sa.inspect(conn).get_table_names()
        for table in tables:
            counted = sa.select(sa.func.count()).select_from(sa.table(table))
            rows = conn.execute(counted).scalar_one()
            if engine.dialect.name == "postgresql":
                size = conn.execute(
                    sa.text("SELECT pg_total_relation_size(CAST(:t AS regclass))"), {"t": table}
                ).scalar_one()
            else:
                # The table and its indexes (their names differ; dbstat lists every b-tree).
                names = [table] + [
                    i["name"] for i in sa.inspect(conn).get_indexes(table) if i.get("name")
                ]
                names += [
                    r[0]
                    for r in conn.execute(
                        sa.text(
                            "SELECT name FROM sqlite_master WHERE type='index' AND tbl_name=:t"
                            " AND name LIKE 'sqlite_autoindex_%'"
                        ),
                        {"t": table},
                    )
                ]
                size = 0
                for name in set(names):
                    size += conn.execute(
                        sa.text("SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name = :n"),
                        {"n": name},
                    ).scalar_one()
            out[table] = (int(rows), int(size))
    return out


def measure(label: str, database_url: str, n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp_name, start_demo_sources() as demo:
        tmp = Path(tmp_name)
        with live_broker(
            tmp,
            database_url,
            demo=True,
            bindings=demo.bindings,
            agreements_dir=ROOT / "agreements" / "examples",
            rate_limit_per_second=1e6,
        ) as broker:
            register_demo_identity_provider(broker.services.identity.store)
            token = broker.token(CLIENT, demo_key(CLIENT))
            headers = {"Authorization": f"Bearer {token}"}
            engine = sa.create_engine(normalise_url(database_url), poolclass=sa.pool.NullPool)
            # Warm up (and let the first checkpoint and notification rows exist).
            for _ in range(20):
                broker.http.post("/v1/exchanges", json=body(), headers=headers).raise_for_status()
            before = _sizes(engine)
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(n):
                broker.http.post("/v1/exchanges", json=body(), headers=headers).raise_for_status()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            after = _sizes(engine)
            engine.dispose()
    print(f"\n{label}: {n} allowed exchanges, {wall / n * 1e3:.2f} ms each (one client)")
    print(f"  CPU of this process (broker, demo sources and client): {cpu / n * 1e3:.2f} ms each")
    print(f"  {'table':<28}{'rows/exchange':>15}{'bytes/exchange':>16}")
    total = 0.0
    for table in sorted(after):
        rows = (after[table][0] - before.get(table, (0, 0))[0]) / n
        size = (after[table][1] - before.get(table, (0, 0))[1]) / n
        if rows or size:
            print(f"  {table:<28}{rows:>15.2f}{size:>16.0f}")
            total += size
    print(f"  {'all tables':<28}{'':>15}{total:>16.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--postgres", default=os.environ.get("BROKER_TEST_DATABASE_URL"))
    args = parser.parse_args()
    configure_logging("ERROR")
    with tempfile.TemporaryDirectory() as tmp:
        measure("SQLite (WAL)", f"sqlite:///{tmp}/broker.db", args.n)
    if args.postgres:
        with _pg_schema(args.postgres) as url:
            measure("PostgreSQL", url, args.n)


if __name__ == "__main__":
    main()
