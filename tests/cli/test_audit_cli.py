"""``broker audit`` commands against a real SQLite log, through Typer's runner."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

import broker.audit.tables  # noqa: F401
from broker.audit.checkpoint import generate_log_key, log_key_path, public_key_path
from broker.audit.factory import open_log
from broker.audit.log import AuditLog
from broker.cli.audit import app
from broker.db.engine import build_engine
from broker.db.migrate import upgrade
from broker.settings import load_settings
from tests.audit.conftest import make_entry

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AuditLog:
    monkeypatch.setenv("BROKER_DATABASE_URL", f"sqlite:///{tmp_path / 'broker.db'}")
    monkeypatch.setenv("BROKER_KEYS_DIR", str(tmp_path / "keys"))
    settings = load_settings()
    generate_log_key(log_key_path(settings.keys_dir))
    engine = build_engine(settings.database_url)
    upgrade(engine)
    log = open_log(settings, engine)
    for i in range(30):
        log.append(make_entry(i))
    log.checkpoint_now()
    return log


def test_verify_passes_on_an_intact_log(env: AuditLog) -> None:
    result = runner.invoke(app, ["verify"])
    assert result.exit_code == 0, result.output
    assert "intact: 30 entries" in result.output


def test_verify_exits_1_naming_the_first_bad_entry(env: AuditLog) -> None:
    with env.engine.begin() as conn:
        conn.execute(text("UPDATE audit_entries SET dataset = 'other' WHERE idx = 12"))
    result = runner.invoke(app, ["verify", "--json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["first_bad_entry"] == 12


def test_verify_against_checkpoints_kept_by_parties(env: AuditLog, tmp_path: Path) -> None:
    kept = tmp_path / "police-checkpoint.txt"
    kept.write_text(env.latest_checkpoint().note)
    assert runner.invoke(app, ["verify", "--against", str(kept)]).exit_code == 0
    folder = tmp_path / "hospital-kept"
    folder.mkdir()
    (folder / "30.json").write_text(json.dumps(env.latest_checkpoint().to_json()))
    result = runner.invoke(app, ["verify", "--against", str(folder), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["external_checkpoints_checked"] == 1
    with env.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_entries WHERE idx >= 25"))
        conn.execute(text("DELETE FROM audit_checkpoints WHERE tree_size > 24"))
    result = runner.invoke(app, ["verify", "--against", str(kept)])
    assert result.exit_code == 1
    assert "first bad entry 25" in result.output


def test_redact_then_verify_still_passes(env: AuditLog) -> None:
    result = runner.invoke(app, ["redact", "--before", "2026-11-29T07:00:10Z", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["entries_redacted"] > 0
    assert runner.invoke(app, ["verify"]).exit_code == 0


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_export_writes_evidence(env: AuditLog, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"evidence.{fmt}"
    result = runner.invoke(app, ["export", "--format", fmt, "--out", str(out)])
    assert result.exit_code == 0, result.output
    if fmt == "csv":
        with out.open(newline="") as f:
            count = len(list(csv.reader(f)))
    else:
        count = len(out.read_text().splitlines())
    assert count == 31  # a header or checkpoint line + 30 entries


def test_check_receipt(env: AuditLog, tmp_path: Path) -> None:
    settings = load_settings()
    public = public_key_path(log_key_path(settings.keys_dir))
    exchange_id = str(env.append(make_entry(77)).exchange_id)
    env.checkpoint_now()
    receipt = tmp_path / "receipt.json"
    receipt.write_text(json.dumps(env.receipt(exchange_id)))
    result = runner.invoke(app, ["check-receipt", str(receipt), "--log-key", str(public)])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output
    bad = json.loads(receipt.read_text())
    bad["inclusion_proof"] = list(reversed(bad["inclusion_proof"]))
    receipt.write_text(json.dumps(bad))
    result = runner.invoke(app, ["check-receipt", str(receipt), "--log-key", str(public)])
    assert result.exit_code == 1
    assert "INVALID" in result.output


def test_missing_log_key_is_an_environment_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BROKER_DATABASE_URL", f"sqlite:///{tmp_path / 'b.db'}")
    monkeypatch.setenv("BROKER_KEYS_DIR", str(tmp_path / "nokeys"))
    assert runner.invoke(app, ["verify"]).exit_code == 2
    assert runner.invoke(app, ["redact", "--before", "2026-01-01"]).exit_code == 2
