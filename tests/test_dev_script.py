"""``./dev test`` runs the PostgreSQL leg whenever a server answers on 127.0.0.1:5432, as CI does:
the probe lives in ``./dev`` alone and ``.ci/run`` hands over to it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def probe_block() -> str:
    """The lines of ``./dev test`` that decide the PostgreSQL leg."""
    lines = (REPO / "dev").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if "# The PostgreSQL leg" in line)
    end = next(i for i in range(start, len(lines)) if lines[i] == "    fi")
    return "\n".join(lines[start : end + 1])


def run_probe(**env: str) -> tuple[int, str]:
    """Run the probe as ./dev does; its exit code and the URL it leaves (or ``unset``)."""
    clean = {k: v for k, v in os.environ.items() if k not in ("BROKER_TEST_DATABASE_URL", "CI")}
    script = f'set -euo pipefail\n{probe_block()}\necho "${{BROKER_TEST_DATABASE_URL:-unset}}"'
    done = subprocess.run(
        ["bash", "-c", script], env={**clean, **env}, capture_output=True, text=True, timeout=30
    )
    return done.returncode, done.stdout.strip()


def postgres_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=2):
            return True
    except OSError:
        return False


pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="./dev is a bash script")


def test_the_leg_runs_exactly_when_a_server_answers() -> None:
    code, url = run_probe()
    assert code == 0
    assert url == (PG_URL if postgres_answers() else "unset")


def test_a_database_url_already_set_is_kept() -> None:
    assert run_probe(BROKER_TEST_DATABASE_URL="postgresql+psycopg://db.example/other") == (
        0,
        "postgresql+psycopg://db.example/other",
    )


def test_ci_refuses_to_skip_the_leg() -> None:
    code, url = run_probe(CI="true")
    if postgres_answers():
        assert (code, url) == (0, PG_URL)
    else:
        assert code == 1


def test_ci_hands_over_to_dev_test_without_a_probe_of_its_own() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    assert "5432" not in ci
    assert ci.rstrip().endswith("exec ./dev test")
