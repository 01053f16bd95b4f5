"""Two instances behind HAProxy on PostgreSQL against one on SQLite: same machine, same run.

    .venv/bin/python -m bench.cluster_bench                    # c = 1, 32, 128; 10 s each (~2 min)
    .venv/bin/python -m bench.cluster_bench --seconds 3        # quick look
    BROKER_TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test  (the default)

* cluster: bench/topology.py with ``--instances`` (2) ``broker serve`` processes (one server
  process each) on a fresh PostgreSQL schema, Redis counting the rate limits, HAProxy in front
  with the shipped rules and TLS (the load generator trusts its self-signed certificate);
* single: ``broker serve --demo`` (one process) on SQLite in WAL mode with ``synchronous=FULL``,
  as bench/exchange_bench.py runs it, plain HTTP on loopback.

The load is bench/exchange_loadgen.py (closed loop, N clients each with one request in flight on
its own keep-alive connection) sending the ED safeguarding check of bench/exchange_bench.py with
an application token; every answer must be 200 with ``decision.allow`` true. Throughput at 32 and
128 clients, latency (median, p99) at 1 client. Other work on the machine skews every figure:
the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.exchange_bench import (
    CLIENT,
    PYTHON,
    REPO,
    access_token,
    broker_env,
    exchange_body,
    free_port,
    start,
    stop,
    subjects,
    wait_ready,
)
from bench.topology import Cluster
from demo.identity import demo_id_token

ROLE = "safeguarding-nurse"
NURSE = "hospital-ed-nurse-17"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def load(
    url: str, bodies: Path, token: Path, level: int, args: argparse.Namespace, ca: Path | None
) -> dict[str, Any]:
    cmd = [PYTHON, str(REPO / "bench" / "exchange_loadgen.py"), "--url", url]
    cmd += ["--bodies", str(bodies), "--token", str(token), "--concurrency", str(level)]
    cmd += ["--warmup", str(args.warmup), "--seconds", str(args.seconds), "--expect-allow"]
    if ca is not None:
        cmd += ["--ca", str(ca)]
    done = subprocess.run(
        cmd, capture_output=True, check=True, timeout=args.warmup + args.seconds + 60
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def measure(
    name: str,
    base: str,
    numbers: list[str],
    tmp: Path,
    args: argparse.Namespace,
    ca: Path | None,
    token: str,
) -> list[tuple[str, int, dict[str, Any]]]:
    rows = []
    token_file = tmp / f"{name}-token"
    token_file.write_text(token)
    for level in args.levels:
        bodies = tmp / f"{name}-bodies.json"
        id_token = demo_id_token(NURSE, ROLE, CLIENT)  # fresh for each level (five minutes)
        bodies.write_text(json.dumps([exchange_body(n, id_token) for n in numbers]))
        r = load(f"{base}/v1/exchanges", bodies, token_file, level, args, ca)
        print(
            f"  {name:<8} c={level:<4} {r['throughput_rps']:7.0f} req/s p50 {r['p50_ms']:6.2f} ms"
            f" p99 {r['p99_ms']:7.2f} ms errors {sum(r['errors'].values())}",
            flush=True,
        )
        rows.append((name, level, r))
    return rows


def storage(cluster: Cluster) -> tuple[int, int, int]:
    """Log entries, bytes of the log's tables, bytes of every table in the cluster's schema."""
    import sqlalchemy as sa

    from broker.db.engine import build_engine

    engine = build_engine(cluster.database_url, pooled=False)
    try:
        with engine.connect() as conn:
            entries = conn.execute(sa.text("SELECT count(*) FROM audit_entries")).scalar_one()
            sizes: dict[str, int] = dict(
                conn.execute(
                    sa.text(
                        "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c"
                        " JOIN pg_namespace n ON n.oid = c.relnamespace"
                        " WHERE n.nspname = current_schema() AND c.relkind = 'r'"
                    )
                ).all()
            )
    finally:
        engine.dispose()
    log = sum(v for k, v in sizes.items() if str(k).startswith("audit_"))
    return int(entries), int(log), int(sum(sizes.values()))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--levels", default="1,32,128")
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    args.levels = [int(x) for x in args.levels.split(",")]
    pg = os.environ.get("BROKER_TEST_DATABASE_URL") or DEFAULT_PG
    tmp = Path(tempfile.mkdtemp(prefix="broker-cluster-bench-"))
    print(f"cores: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.2f}")
    rows: list[tuple[str, int, dict[str, Any]]] = []

    # One instance on SQLite (the exchange bench's set-up, one server process).
    var = tmp / "single" / "var"
    var.mkdir(parents=True)
    port = free_port()
    single_base = f"http://127.0.0.1:{port}"
    env = broker_env(var, port, pin=False)
    serve = "from broker.cli.main import main; main()"
    command = [PYTHON, "-c", serve, "serve", "--demo", "--port", str(port), "--workers", "1"]
    broker = start(command, tmp / "single", env, tmp / "single.log")
    try:
        wait_ready(f"{single_base}/healthz", broker, tmp / "single.log", 120)
        council = var / "demo" / "sources" / "council" / "childrens_social_care.db"
        numbers = subjects(council)
        print(f"single: broker serve --demo, one process, SQLite, {single_base}")
        rows += measure("single", single_base, numbers, tmp, args, None, access_token(single_base))
    finally:
        stop(broker)

    # N instances on PostgreSQL behind HAProxy (one server process each), Redis for the limits.
    with Cluster(
        tmp / "cluster", pg, instances=args.instances, rate_overrides={CLIENT: 100000.0}
    ) as cluster:
        print(f"cluster: {args.instances} instances behind HAProxy ({cluster.url}), PostgreSQL")
        with cluster.client(timeout=10) as client:
            token = access_token(cluster.url, client=client)
        before = storage(cluster)
        rows += measure("cluster", cluster.url, numbers, tmp, args, cluster.ca_file, token)
        time.sleep(0.5)
        after = storage(cluster)

    print(f"\nload average after: {os.getloadavg()[0]:.2f}\n")
    print("| set-up | clients | req/s | p50 ms | p99 ms | errors |")
    print("|---|---:|---:|---:|---:|---:|")
    errors = 0
    for name, level, r in rows:
        errors += sum(r["errors"].values())
        print(
            f"| {name} | {level} | {r['throughput_rps']:.0f} | {r['p50_ms']:.2f}"
            f" | {r['p99_ms']:.2f} | {sum(r['errors'].values())} |"
        )
    entries, log_bytes, all_bytes = (a - b for a, b in zip(after, before, strict=True))
    print(
        f"\nPostgreSQL, growth during the cluster's runs: {entries} log entries; the log's tables"
        f" {log_bytes / max(1, entries):.0f} bytes per entry, all tables"
        f" {all_bytes / max(1, entries):.0f} bytes per entry (indexes and TOAST included)"
    )
    if args.keep:
        print(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
