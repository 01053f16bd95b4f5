"""The access report from a real audit log, on SQLite and PostgreSQL when configured."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from broker.audit.entry import AgreementRef, AuditEntry
from broker.audit.log import AuditLog, LogSigner
from broker.audit.search import AuditScope as Scope
from broker.core.pseudonym import Pseudonym
from broker.db import migrate
from broker.subjects.report import DAY_MS, HoldRules, build_report

NOW = 1_790_000_000_000
ME = Pseudonym("ab" * 32, "v1")
OLD_KEY_ME = Pseudonym("cd" * 32, "v0")
SOMEONE = Pseudonym("ef" * 32, "v1")
HOLDS = HoldRules(
    {
        ("ISA-SG", "2"): [("ccc.child-protection", ("R9Z",), 365)],
        ("ISA-REUSE", "1"): [("ccc.proof-documents", ("ccc",), 0)],
    }
)


@pytest.fixture
def log(engine: Engine) -> AuditLog:
    migrate.upgrade(engine)
    return AuditLog(engine, LogSigner("test/audit", Ed25519PrivateKey.generate()))


def add(log: AuditLog, subject: Pseudonym, agreement: str, version: str, days_ago: int) -> str:
    dataset = "ccc.child-protection" if agreement == "ISA-SG" else "ccc.proof-documents"
    entry = AuditEntry(
        kind="exchange",
        time_ms=NOW - days_ago * DAY_MS,
        party_id="R9Z" if agreement == "ISA-SG" else "ccc",
        agreement=AgreementRef(agreement, version, "sha256:" + "0" * 64),
        purpose="p",
        dataset=dataset,
        subject=subject,
        decision="allow",
        user_id="nurse-17",
    )
    return log.append(entry).exchange_id


def test_holds_other_people_and_key_versions(log: AuditLog, engine: Engine) -> None:
    held = add(log, ME, "ISA-SG", "2", days_ago=30)
    shown = add(log, OLD_KEY_ME, "ISA-REUSE", "1", days_ago=20)
    ended = add(log, ME, "ISA-SG", "2", days_ago=400)
    unknown_version = add(log, ME, "ISA-SG", "9", days_ago=10)
    unknown_agreement = add(log, ME, "ISA-GONE", "1", days_ago=5)
    add(log, SOMEONE, "ISA-REUSE", "1", days_ago=1)
    mine = [ME.value, OLD_KEY_ME.value]

    citizen = build_report(engine, pseudonyms=mine, view="subject", holds=HOLDS, now_ms=NOW)
    assert [e["exchange_id"] for e in citizen.exchanges] == [ended, shown]
    assert {h["exchange_id"] for h in citizen.held_back} == {
        held,
        unknown_version,
        unknown_agreement,
    }
    assert all("nurse-17" not in str(e) for e in citizen.exchanges)
    reasons = {h["exchange_id"]: h["hold_reason"] for h in citizen.held_back}
    assert reasons[unknown_agreement] == "agreement unknown"

    officer = build_report(
        engine,
        pseudonyms=mine,
        view="governance",
        holds=HOLDS,
        now_ms=NOW,
        scope=Scope("R9Z", ("ISA-SG",)),
    )
    assert [e["exchange_id"] for e in officer.exchanges] == [ended, held, unknown_version]

    later = build_report(
        engine, pseudonyms=mine, view="subject", holds=HOLDS, now_ms=NOW + 366 * DAY_MS
    )
    assert held in [e["exchange_id"] for e in later.exchanges]
