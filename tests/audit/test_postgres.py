"""The store on PostgreSQL (the two-process test is in test_processes.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine

from broker.audit.log import AuditLog, LogSigner
from broker.audit.store import CheckpointPolicy
from broker.audit.verify import verify_log
from tests.audit.conftest import ORIGIN, make_entry

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[2]


def test_appends_proofs_and_verify_on_postgres(pg_engine_factory: Callable[[], Engine]) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    engine = pg_engine_factory()
    signer = LogSigner(ORIGIN, Ed25519PrivateKey.generate())
    log = AuditLog(engine, signer, policy=CheckpointPolicy(every_entries=7, every_seconds=3600))
    for i in range(40):
        log.append(make_entry(i))
    proof = log.inclusion_proof(index=5)
    assert proof["tree_size"] == 36
    report = verify_log(engine, signer.public_key, origin=ORIGIN)
    assert report.ok, report.problems
    engine.dispose()


def test_verify_reads_a_snapshot_on_postgres(pg_engine_factory: Callable[[], Engine]) -> None:
    import threading

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    engine = pg_engine_factory()
    signer = LogSigner(ORIGIN, Ed25519PrivateKey.generate())
    log = AuditLog(engine, signer, policy=CheckpointPolicy(every_entries=5, every_seconds=3600))
    for i in range(20):
        log.append(make_entry(i))
    stop = threading.Event()

    def keep_appending() -> None:
        i = 100
        while not stop.is_set():
            log.append(make_entry(i))
            i += 1

    writer = threading.Thread(target=keep_appending)
    writer.start()
    try:
        reports = [verify_log(engine, signer.public_key, origin=ORIGIN) for _ in range(5)]
    finally:
        stop.set()
        writer.join()
    assert all(r.ok for r in reports), [r.problems for r in reports]
    engine.dispose()
