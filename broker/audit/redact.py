"""Redaction of personal fields after their retention, without breaking any proof.

The leaf holds only salted commitments to the personal fields, so removing a value and its salt
leaves the leaf hash, the tree and every checkpoint unchanged. Each redaction is itself logged
first (kind ``redaction`` with its cut-off), and the verifier accepts a removed value only on an
entry older than the cut-off of a redaction logged after it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import or_, select, update

from broker.audit.entry import PERSONAL_FIELDS, AuditEntry, format_time_ms
from broker.audit.errors import AuditEntryError, AuditUnavailableError
from broker.audit.log import AuditLog
from broker.audit.tables import audit_entries

_DAY_MS = 86_400_000


@dataclass(frozen=True)
class RedactionResult:
    before_ms: int
    redaction_index: int
    """Where the redaction itself is logged."""
    entries_redacted: int

    def to_json(self) -> dict[str, object]:
        return {
            "before": format_time_ms(self.before_ms),
            "redaction_index": self.redaction_index,
            "entries_redacted": self.entries_redacted,
        }


def _anything_to_redact(log: AuditLog, before_ms: int) -> bool:
    c = audit_entries.c
    holding = [c[name].is_not(None) for name in PERSONAL_FIELDS] + [c.record_salt.is_not(None)]
    with log.engine.connect() as conn:
        found = conn.execute(
            select(c.idx).where(c.at_ms < before_ms, or_(*holding)).limit(1)
        ).first()
    return found is not None


def redact_before(log: AuditLog, before_ms: int, *, actor: str | None = None) -> RedactionResult:
    """Remove personal values, their salts and record salts of every entry older than
    ``before_ms`` (UTC ms). Logs the redaction first. Raises :class:`AuditUnavailableError`."""
    if before_ms > int(time.time() * 1000):
        raise AuditEntryError("cannot redact entries from the future")
    if actor == "retention" and not _anything_to_redact(log, before_ms):
        # The scheduled job found nothing past retention: no entry for a redaction of nothing.
        return RedactionResult(before_ms, -1, 0)
    details: dict[str, object] = {"before": format_time_ms(before_ms), "before_ms": before_ms}
    if actor:
        details["actor"] = actor
    logged = log.append(AuditEntry(kind="redaction", details=details))
    c = audit_entries.c
    cleared: dict[str, None] = {"record_salt": None}
    for name in PERSONAL_FIELDS:
        cleared[name] = None
        cleared[name + "_salt"] = None
    holding = [c[name].is_not(None) for name in PERSONAL_FIELDS] + [c.record_salt.is_not(None)]
    sqlite = log.engine.dialect.name == "sqlite"
    try:
        with log.engine.begin() as conn:
            if sqlite:  # overwrite the old values in freed space, not just unlink them
                conn.exec_driver_sql("PRAGMA secure_delete = ON")
            result = conn.execute(
                update(audit_entries)
                .where(c.at_ms < before_ms, c.idx < logged.leaf_index, or_(*holding))
                .values(**cleared)
            )
        if sqlite:  # and out of the write-ahead log too
            with log.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                conn.exec_driver_sql("PRAGMA secure_delete = OFF")
    except Exception as e:
        raise AuditUnavailableError(f"redaction failed: {e}") from e
    return RedactionResult(before_ms, logged.leaf_index, result.rowcount)


def redact_by_retention(
    log: AuditLog, retention_days: int, *, now_ms: int, actor: str | None = "retention"
) -> RedactionResult:
    """The scheduled job: redact everything older than ``retention_days`` before ``now_ms``."""
    if retention_days < 1:
        raise ValueError("retention must be at least one day")
    return redact_before(log, now_ms - retention_days * _DAY_MS, actor=actor)
