"""Two OS processes with many threads each append to one database: one sequence, no gaps or
forks, and the result verifies. Always on SQLite; on PostgreSQL when BROKER_TEST_DATABASE_URL is
set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from broker.audit.checkpoint import generate_log_key
from broker.audit.verify import verify_log
from broker.db.engine import build_engine
from broker.db.migrate import upgrade
from tests.audit.conftest import ORIGIN

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'shared.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    engine = build_engine(url)
    upgrade(engine)
    yield url, engine
    engine.dispose()


def test_two_processes_many_threads_make_one_sequence(
    shared: tuple[str, Engine], tmp_path: Path
) -> None:
    url, engine = shared
    key_path = tmp_path / "log-key.pem"
    key = generate_log_key(key_path)
    threads, per_thread = 12, 40
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.audit.appender",
                url,
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
