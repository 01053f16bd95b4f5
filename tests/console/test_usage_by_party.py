"""An agreement's usage by party and month: counts only, the right month, other agreements and
non-exchange entries left out (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

import datetime as dt

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from broker.audit.entry import AgreementRef, AuditEntry
from broker.audit.log import AuditLog, LogSigner
from broker.audit.usage import usage_by_party
from broker.db.migrate import upgrade


def _ms(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.UTC).timestamp() * 1000)


def test_counts_by_party_and_month(engine: Engine) -> None:
    upgrade(engine)
    log = AuditLog(engine, LogSigner("usage.test/audit", Ed25519PrivateKey.generate()))
    ref = AgreementRef("ISA-A", "1", "sha256:" + "ab" * 32)
    other = AgreementRef("ISA-B", "1", "sha256:" + "cd" * 32)

    def add(
        party: str, day: dt.date, decision: str = "allow", agreement: AgreementRef = ref
    ) -> None:
        log.append(
            AuditEntry(
                kind="exchange",
                time_ms=_ms(day),
                party_id=party,
                agreement=agreement,
                dataset="ds",
                decision=decision,
            )
        )

    add("police", dt.date(2026, 3, 1))
    add("police", dt.date(2026, 3, 31), decision="deny")
    add("police", dt.date(2026, 5, 2))
    add("hospital", dt.date(2026, 4, 15))
    add("hospital", dt.date(2026, 2, 28))  # before the period
    add("hospital", dt.date(2026, 4, 15), agreement=other)
    log.append(AuditEntry(kind="audit-read", time_ms=_ms(dt.date(2026, 4, 1)), party_id="x"))
    months = [dt.date(2026, 3, 1), dt.date(2026, 4, 1), dt.date(2026, 5, 1)]
    usage = usage_by_party(engine, "ISA-A", months)
    assert [u.party_id for u in usage] == ["hospital", "police"]
    hospital, police = usage
    assert hospital.counts == [0, 1, 0]
    assert police.counts == [2, 0, 1]
    assert police.allowed == [1, 0, 1]
    assert police.to_json(months)["months"][0] == {"month": "2026-03", "exchanges": 2, "allowed": 1}
    assert usage_by_party(engine, "ISA-C", months) == []
    assert usage_by_party(engine, "ISA-A", []) == []
