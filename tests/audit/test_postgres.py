"""The same log on PostgreSQL: two OS processes with many threads each make one sequence."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine

from broker.audit.checkpoint import generate_log_key
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


def test_two_processes_many_threads_make_one_sequence(
    pg_engine_factory: Callable[[], Engine], pg_url: str, tmp_path: Path
) -> None:
    engine = pg_engine_factory()  # migrates the schema
    key_path = tmp_path / "log-key.pem"
    key = generate_log_key(key_path)
    threads, per_thread = 12, 40
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.audit.pg_appender",
                pg_url,
                str(key_path),
                str(threads),
                str(per_thread),
                str(tag),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in (1, 2)
    ]
    indexes: list[int] = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        indexes.extend(json.loads(out))
    total = 2 * threads * per_thread
    assert sorted(indexes) == list(range(total))  # no gaps, no duplicates (forks)
    report = verify_log(engine, key.public_key(), origin=ORIGIN)
    assert report.ok, report.problems
    assert report.entries_checked == total
    assert report.checkpoints_checked >= 1
    engine.dispose()
