"""``broker db upgrade`` and ``broker db status``: the explicit migration step of a cluster
(deploy/README.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from broker.cli.main import app
from broker.db import migrate

runner = CliRunner()


@pytest.fixture
def sqlite_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'broker.db'}"
    monkeypatch.setenv("BROKER_DATABASE_URL", url)
    return url


def test_status_then_upgrade_then_status(sqlite_url: str) -> None:
    before = runner.invoke(app, ["db", "status", "--json"])
    assert before.exit_code == 1
    assert json.loads(before.stdout) == {
        "current": None,
        "head": migrate.head_revision(),
        "up_to_date": False,
    }
    first = runner.invoke(app, ["db", "upgrade"])
    assert first.exit_code == 0, first.output
    assert f"schema migrated from empty to {migrate.head_revision()}" in first.stdout
    again = runner.invoke(app, ["db", "upgrade"])
    assert again.exit_code == 0
    assert "schema already at" in again.stdout
    after = runner.invoke(app, ["db", "status"])
    assert after.exit_code == 0
    assert f"database {migrate.head_revision()}" in after.stdout


def test_an_unreachable_database_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROKER_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:9/none")
    result = runner.invoke(app, ["db", "status"])
    assert result.exit_code == 2
    assert "database unavailable" in result.output
