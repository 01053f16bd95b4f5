"""Audit log benchmarks: durable appends/s, full verification entries/s, proof time at 1M entries.

    .venv/bin/python -m bench.audit_bench            # short run (< 1 minute)
    .venv/bin/python -m bench.audit_bench --full     # longer, steadier figures
    ... --pg postgresql+psycopg://postgres@127.0.0.1:5432/test         # PostgreSQL too
    (BROKER_TEST_DATABASE_URL also turns PostgreSQL on)

Appends go through ``AuditLog.append`` (sealing, group commit, SQLite WAL synchronous=FULL or a
PostgreSQL commit) from N threads. Verification recomputes every leaf from its stored row. The
proof benchmark builds a 1,000,000-leaf tree directly (synthetic leaves, nodes bulk-inserted with
the same CompactRange the log uses) and times ``AuditLog.inclusion_proof`` and
``consistency_proof`` end to end (SQL included).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, Engine, create_engine, text

import broker.audit.tables  # noqa: F401  (registers the tables)
from broker.audit import store
from broker.audit.entry import (
    AgreementRef,
    AuditEntry,
    digest_released_record,
    seal,
)
from broker.audit.log import AuditLog, LogSigner
from broker.audit.verify import verify_log
from broker.core import merkle
from broker.core.projection import WithheldField
from broker.core.pseudonym import PseudonymKey, pseudonymise
from broker.db.engine import build_engine, normalise_url
from broker.db.migrate import upgrade

ORIGIN = "bench.broker.example/audit"
KEY = PseudonymKey("v1", b"bench-pseudonym-key-32-bytes-long")
SUBJECTS = [pseudonymise(KEY, "nhs_number", f"99900{i:05d}") for i in range(50)]
RELEASED = digest_released_record({"child_protection_plan": {"status": "active"}})


def entry(i: int) -> AuditEntry:
    return AuditEntry(
        decision="allow" if i % 4 else "deny",
        client_id="r9z-ed-safeguarding",
        party_id="R9Z",
        user_id=f"ed-nurse-{i % 40}",
        user_role="safeguarding-nurse",
        agreement=AgreementRef("ISA-SAFEGUARDING-CHILDREN", "3", "sha256:" + "ab" * 32),
        purpose="child-protection-check",
        lawful_basis=("UK GDPR 6(1)(e)", "UK GDPR 9(2)(h)"),
        dataset="ccc.child-protection",
        subject=SUBJECTS[i % len(SUBJECTS)],
        requested_fields=("name.family", "child_protection_plan.status"),
        released_fields=("child_protection_plan.status",),
        withheld_fields=(WithheldField("name.family", "not in the agreement"),),
        reasons=("permitted by flow 1",),
        case_reference=f"ED-2026-11-{i:06d}",
        obligations=({"type": "notify-provider", "party": "calderbridge-city-council"},),
        policy_revision="rev-42",
        source_outcome="ok",
        released=RELEASED,
        latency_us=1500,
    )


class Target:
    """A fresh database per measurement: a SQLite file or a PostgreSQL schema."""

    def __init__(self, pg_url: str | None) -> None:
        self.pg_url = pg_url
        self.tmp = Path(tempfile.mkdtemp(prefix="audit-bench-"))
        self.schemas: list[str] = []

    @property
    def name(self) -> str:
        return "PostgreSQL" if self.pg_url else "SQLite"

    def engine(self, pool: int) -> Engine:
        if self.pg_url is None:
            url = f"sqlite:///{self.tmp / (uuid.uuid4().hex + '.db')}"
        else:
            schema = "audit_bench_" + uuid.uuid4().hex[:10]
            with create_engine(normalise_url(self.pg_url)).begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            self.schemas.append(schema)
            sep = "&" if "?" in self.pg_url else "?"
            url = f"{normalise_url(self.pg_url)}{sep}options=-csearch_path%3D{schema}"
        engine = build_engine(url, pool_size=pool)
        upgrade(engine)
        return engine

    def close(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
        if self.pg_url and self.schemas:
            admin = create_engine(normalise_url(self.pg_url))
            with admin.begin() as conn:
                for schema in self.schemas:
                    conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


def signer() -> LogSigner:
    return LogSigner(ORIGIN, Ed25519PrivateKey.generate())


def bench_appends(target: Target, writers: int, total: int) -> tuple[float, float, float, float]:
    """appends/s, median and p99 append latency (ms), CPU microseconds per append."""
    engine = target.engine(pool=min(writers, 8) + 2)
    log = AuditLog(engine, signer(), policy=store.CheckpointPolicy(every_entries=10_000))
    per = max(1, total // writers)
    latencies: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(writers + 1)

    def work(w: int) -> None:
        mine: list[float] = []
        barrier.wait()
        for i in range(per):
            t = time.perf_counter()
            log.append(entry(w * per + i))
            mine.append(time.perf_counter() - t)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    barrier.wait()
    start, cpu = time.perf_counter(), time.process_time()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    cpu_us = (time.process_time() - cpu) / (per * writers) * 1e6
    engine.dispose()
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    return per * writers / elapsed, statistics.median(latencies) * 1000, p99 * 1000, cpu_us


def fill(engine: Engine, log: AuditLog, count: int, batch: int = 5000) -> None:
    """Append ``count`` real entries through the store's commit path in large batches."""
    policy = store.CheckpointPolicy(every_entries=10_000, every_seconds=10**9)
    done = 0
    while done < count:
        n = min(batch, count - done)
        sealed = [seal(entry(done + i)) for i in range(n)]
        store.commit_batch(
            engine, sealed, now_ms=int(time.time() * 1000), sign=log.signer.sign, policy=policy
        )
        done += n
    log.checkpoint_now()


def bench_verify(target: Target, count: int) -> tuple[float, float, bool]:
    engine = target.engine(pool=2)
    log = AuditLog(engine, signer())
    fill(engine, log, count)
    rates: list[float] = []
    cpu_rates: list[float] = []
    ok = True
    for _ in range(3):
        start, cpu = time.perf_counter(), time.process_time()
        report = verify_log(engine, log.signer.public_key, origin=ORIGIN)
        rates.append(report.entries_checked / (time.perf_counter() - start))
        cpu_rates.append(report.entries_checked / (time.process_time() - cpu))
        ok = ok and report.ok
    engine.dispose()
    return statistics.median(rates), statistics.median(cpu_rates), ok


def build_big_tree(engine: Engine, log: AuditLog, size: int, sampled: list[int]) -> None:
    """A ``size``-leaf log: nodes and head bulk-inserted; full entry rows only for ``sampled``."""
    compact = merkle.CompactRange.empty()
    leaves: dict[int, bytes] = {}
    wanted = set(sampled)
    nodes: list[tuple[int, bytes]] = []
    m = "?" if engine.dialect.paramstyle == "qmark" else "%s"
    insert_nodes = f"INSERT INTO audit_nodes (pos, hash) VALUES ({m}, {m})"  # noqa: S608
    insert_entries = (
        "INSERT INTO audit_entries (idx, exchange_id, kind, at_ms, break_glass, leaf)"  # noqa: S608
        f" VALUES ({m}, {m}, {m}, {m}, {m}, {m})"
    )
    postgres = engine.dialect.name == "postgresql"

    def flush(conn: Connection) -> None:
        if postgres:  # COPY is an order of magnitude faster than INSERTs for two million rows
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            with cursor.copy("COPY audit_nodes (pos, hash) FROM STDIN") as copy:
                for row in nodes:
                    copy.write_row(row)
        else:
            conn.exec_driver_sql(insert_nodes, nodes)
        nodes.clear()

    with engine.begin() as conn:
        for i in range(size):
            leaf = b'{"entry":{"bench":true},"index":' + str(i).encode() + b"}"
            if i in wanted:
                leaves[i] = leaf
            nodes.extend(compact.append(merkle.leaf_hash(leaf)))
            if len(nodes) >= 200_000:
                flush(conn)
        if nodes:
            flush(conn)
        rows = [(i, str(uuid.uuid4()), "exchange", 0, False, leaves[i]) for i in sorted(leaves)]
        conn.exec_driver_sql(insert_entries, rows)
        conn.exec_driver_sql(
            f"UPDATE audit_head SET size = {m}, compact = {m} WHERE id = 1",  # noqa: S608
            (compact.size, compact.to_bytes()),
        )
    log.checkpoint_now()


def bench_proofs(target: Target, size: int, samples: int) -> dict[str, float]:
    engine = target.engine(pool=2)
    log = AuditLog(engine, signer())
    rng = random.Random(6962)
    sampled = [rng.randrange(size) for _ in range(samples)]
    t = time.perf_counter()
    build_big_tree(engine, log, size, sampled)
    build_s = time.perf_counter() - t
    cp = log.latest_checkpoint()
    inclusion: list[float] = []
    for index in sampled:
        t = time.perf_counter()
        proof = log.inclusion_proof(index=index, tree_size=size)
        inclusion.append(time.perf_counter() - t)
        hashes = [bytes.fromhex(h) for h in proof["proof"]]  # type: ignore[attr-defined]
        leaf = bytes.fromhex(str(proof["leaf_hash"]))
        assert merkle.verify_inclusion(index, size, leaf, hashes, cp.root)
    consistency: list[float] = []
    for _ in range(samples):
        first = rng.randrange(1, size)
        t = time.perf_counter()
        log.consistency_proof(first, size)
        consistency.append(time.perf_counter() - t)
    engine.dispose()
    inclusion.sort()
    consistency.sort()
    return {
        "build_s": build_s,
        "inclusion_median_ms": statistics.median(inclusion) * 1000,
        "inclusion_p99_ms": inclusion[int(len(inclusion) * 0.99) - 1] * 1000,
        "consistency_median_ms": statistics.median(consistency) * 1000,
        "consistency_p99_ms": consistency[int(len(consistency) * 0.99) - 1] * 1000,
    }


def run(target: Target, full: bool, proof_size: int) -> None:
    print(f"== {target.name}")
    per_writers = {1: 1500, 8: 6000, 64: 16000} if not full else {1: 5000, 8: 30000, 64: 100000}
    for writers, total in per_writers.items():
        rate, median, p99, cpu_us = bench_appends(target, writers, total)
        print(
            f"durable appends, {writers:>2} writers: {rate:>9,.0f}/s"
            f"   latency median {median:.2f} ms, p99 {p99:.2f} ms, {cpu_us:.0f} us CPU/append"
        )
    verify_count = 200_000 if full else 40_000
    rate, cpu_rate, ok = bench_verify(target, verify_count)
    print(
        f"full verification ({verify_count:,} entries, median of 3): {rate:>9,.0f} entries/s"
        f"  ({cpu_rate:,.0f} per CPU-second of this process; ok={ok})"
    )
    result = bench_proofs(target, proof_size, 1000 if full else 300)
    print(
        f"proofs at {proof_size:,} entries (tree built in {result['build_s']:.1f} s):"
        f" inclusion median {result['inclusion_median_ms']:.3f} ms,"
        f" p99 {result['inclusion_p99_ms']:.3f} ms;"
        f" consistency median {result['consistency_median_ms']:.3f} ms,"
        f" p99 {result['consistency_p99_ms']:.3f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="more entries, steadier figures")
    parser.add_argument("--pg", default=os.environ.get("BROKER_TEST_DATABASE_URL"))
    parser.add_argument("--proof-size", type=int, default=1_000_000)
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {load:.2f}")
    targets = [Target(None)]
    if args.pg and not args.sqlite_only:
        targets.append(Target(args.pg))
    for target in targets:
        try:
            run(target, args.full, args.proof_size)
        finally:
            target.close()


if __name__ == "__main__":
    main()
