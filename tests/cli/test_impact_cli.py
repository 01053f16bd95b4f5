"""``broker agreements impact`` and the complete ``broker agreements diff`` (Typer's runner)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from broker.audit.checkpoint import generate_log_key, log_key_path
from broker.audit.entry import AgreementRef, AuditEntry
from broker.audit.factory import open_log
from broker.audit.log import AuditLog
from broker.cli.agreements import app
from broker.core.pseudonym import Pseudonym
from broker.db.engine import build_engine
from broker.db.migrate import upgrade
from broker.settings import load_settings

REPO = Path(__file__).resolve().parents[2]
ISA = REPO / "agreements" / "examples" / "isa" / "ISA-SAFEGUARDING-CHILDREN.yaml"
runner = CliRunner()


@pytest.fixture
def draft(tmp_path: Path) -> Path:
    text = ISA.read_text().replace("version: 1", "version: 2", 1)
    text = text.replace(
        "requester_roles: [safeguarding-nurse, ed-doctor, gp, mash-officer]",
        "requester_roles: [safeguarding-nurse, ed-doctor, school-nurse, mash-officer]",
    )
    path = tmp_path / "draft.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AuditLog:
    monkeypatch.setenv("BROKER_DATABASE_URL", f"sqlite:///{tmp_path / 'broker.db'}")
    monkeypatch.setenv("BROKER_KEYS_DIR", str(tmp_path / "keys"))
    monkeypatch.setenv("BROKER_AGREEMENTS_DIR", str(REPO / "agreements"))
    monkeypatch.setenv("BROKER_POLICY_DIR", str(REPO / "policies"))
    settings = load_settings()
    generate_log_key(log_key_path(settings.keys_dir))
    engine = build_engine(settings.database_url)
    upgrade(engine)
    audit = open_log(settings, engine)
    now_ms = int(time.time() * 1000)
    for i, (role, decision) in enumerate([("school-nurse", "deny")] * 3 + [("gp", "allow")] * 2):
        audit.append(
            AuditEntry(
                kind="exchange",
                time_ms=now_ms - (i + 1) * 60_000,
                client_id="r9z-ed-safeguarding",
                party_id="R9Z",
                user_id=f"cli-user-{i}",
                user_role=role,
                agreement=AgreementRef("ISA-SAFEGUARDING-CHILDREN", "1", ""),
                purpose="child-protection-check",
                dataset="ccc.child-protection",
                subject=Pseudonym(f"{i:064x}", "v1"),
                requested_fields=("name.family",),
                released_fields=("name.family",) if decision == "allow" else (),
                decision=decision,
                case_reference=f"CLI-CASE-{i}",
                details={"mode": "fetch", "user_verified": True, "user_assurance": "verified"},
            )
        )
    return audit


def test_impact_from_the_command_line(log: AuditLog, draft: Path) -> None:
    result = runner.invoke(
        app, ["impact", "--draft", str(draft), "--days", "7", "--demo", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    totals = report["result"]["totals"]
    assert (totals["newly_allowed"], totals["newly_denied"], totals["requests"]) == (3, 2, 5)
    for personal in ("cli-user-", "CLI-CASE-", "0" * 64):
        assert personal not in result.output
    text = runner.invoke(app, ["impact", "--draft", str(draft), "--demo"])
    assert text.exit_code == 0, text.output
    assert "newly allowed: 3" in text.output
    assert "+ R9Z school-nurse ccc.child-protection name.family" in text.output


def test_impact_refuses_a_bad_draft_and_period(log: AuditLog, tmp_path: Path, draft: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: agreement\nid: X\n")
    result = runner.invoke(app, ["impact", "--draft", str(bad), "--demo"])
    assert result.exit_code == 1
    assert "title" in result.output
    assert (
        runner.invoke(app, ["impact", "--draft", str(draft), "--days", "91", "--demo"]).exit_code
        == 2
    )


def test_diff_reports_the_added_requester_role(draft: Path) -> None:
    result = runner.invoke(
        app, ["diff", str(ISA), str(draft), "--root", str(REPO / "agreements" / "examples")]
    )
    assert result.exit_code == 0, result.output
    assert "+ flows[cp-status-to-health-and-police].conditions.requester_roles: school-nurse" in (
        result.output
    )
    assert "- flows[cp-status-to-health-and-police].conditions.requester_roles: gp" in result.output
    assert "~ version: 1 -> 2" in result.output
    as_json = runner.invoke(
        app,
        ["diff", str(ISA), str(draft), "--json", "--root", str(REPO / "agreements" / "examples")],
    )
    changes = json.loads(as_json.output)["changes"]
    assert {
        "path": "version",
        "section": "version",
        "change": "changed",
        "old": 1,
        "new": 2,
    } in changes
