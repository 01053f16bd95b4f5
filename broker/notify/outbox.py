"""The outbox: provider notifications written with the audit entry, read by the delivery worker.

The exchange pipeline calls :func:`enqueue_notification` on the connection of the audit commit
(``AuditLog.append(entry, extras=[...])``), so a notification exists exactly when its exchange is
in the log. The worker claims due rows (:meth:`OutboxStore.claim_due`, safe with several broker
processes: a claim is a conditional update that pushes ``next_attempt_ms`` forward by a lease), and
records each attempt. Delivery is at least once; the ``webhook-id`` header (the row id) lets the
provider drop duplicates.

What the provider is sent, and why (an explicit choice): the payload names the exchange, the
agreement, flow, purpose and dataset, who asked (party, system, role), when, whether it was
break-glass, which fields were released, and the recipient's own reference to the subject
(never the broker's pseudonym, which governance searches show: see :mod:`broker.notify.sealing`).
The subject's own
identifier is added only when the pipeline passes ``subject``: it should do so for the provider of
the dataset the record was just fetched from, under a flow with ``notify_provider: true``. That
provider already holds the record under that identifier (the broker fetched it from there), so
telling it which of its own records was shared reveals no identifier it does not hold, and the
signed agreement names this notice as its purpose. Without it a notice would be useless: a
reference keyed by the broker means nothing to the provider beyond telling notices apart. The
identifier is never stored in clear (see :mod:`broker.notify.sealing`) and is erased from the
row once delivered or given up.
"""

from __future__ import annotations

import functools
import json
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Connection, Engine, Update, bindparam, delete, func, select, update
from sqlalchemy.sql.dml import ReturningUpdate

from broker.core.identifiers import SubjectId
from broker.db.gate import write_gate
from broker.notify.notice import ProviderNotice
from broker.notify.sealing import SubjectSealer
from broker.notify.tables import outbox

Status = Literal["pending", "delivered", "failed"]
STATUSES: tuple[Status, ...] = ("pending", "delivered", "failed")


def enqueue_notification(
    conn: Connection,
    notice: ProviderNotice,
    *,
    now_ms: int,
    subject: SubjectId | None = None,
    sealer: SubjectSealer | None = None,
) -> str:
    """Write one outbox row on ``conn`` (the caller's transaction); return its id.

    ``subject`` is sent back to the provider (see the module docstring for when) and is stored
    sealed, which needs ``sealer``. Raises ValueError when a subject is given without a sealer,
    and SQLAlchemy errors unchanged (the audit commit then fails as a whole).
    """
    row_id = str(uuid.uuid4())
    sealed: bytes | None = None
    version: str | None = None
    if subject is not None:
        if sealer is None:
            raise ValueError("a subject identifier can only be queued sealed: pass a sealer")
        sealed, version = sealer.seal(subject, row_id)
    reference = None
    if sealer is not None and notice.subject_pseudonym is not None:
        reference = sealer.reference(notice.subject_pseudonym, notice.provider_party)
    payload = json.dumps(notice.to_payload(reference), sort_keys=True, separators=(",", ":"))
    values = (
        row_id,
        notice.exchange_id,
        notice.provider_party,
        notice.event_type,
        payload,
        sealed,
        version,
        "pending",
        0,
        now_ms,
        now_ms,
    )
    # Straight to the driver, as the audit store does: this runs inside the audit commit of
    # every notifying exchange, and SQLAlchemy's statement handling costs more than the insert.
    conn.exec_driver_sql(_insert_sql(conn.dialect.paramstyle), values)
    return row_id


_COLUMNS = (
    "id",
    "exchange_id",
    "party_id",
    "event_type",
    "payload",
    "subject_sealed",
    "subject_key_version",
    "status",
    "attempts",
    "next_attempt_ms",
    "created_ms",
)


@functools.cache
def _insert_sql(paramstyle: str) -> str:
    mark = {"qmark": "?", "format": "%s", "pyformat": "%s"}[paramstyle]
    marks = ", ".join([mark] * len(_COLUMNS))
    return f"INSERT INTO outbox ({', '.join(_COLUMNS)}) VALUES ({marks})"  # noqa: S608


def backoff_seconds(
    attempts: int, *, base_seconds: float, max_seconds: float, rng: random.Random | None = None
) -> float:
    """Delay before the next try after ``attempts`` failed ones: exponential, capped, with
    "equal jitter" (between half and all of ``base * 2**(attempts-1)``) so retries spread out."""
    ceiling = min(max_seconds, base_seconds * 2.0 ** max(0, attempts - 1))
    jitter: float = (rng or random.Random()).random()  # noqa: S311 - jitter, not a secret
    return ceiling / 2 + jitter * ceiling / 2


@dataclass(frozen=True)
class Outcome:
    """One delivery attempt: delivered at ``delivered_ms``, else failed with ``error`` and
    retried at ``next_attempt_ms`` (None: given up)."""

    row_id: str
    delivered_ms: int | None = None
    error: str | None = None
    next_attempt_ms: int | None = None


@dataclass(frozen=True)
class OutboxRow:
    """One notification as the store holds it."""

    id: str
    exchange_id: str
    party_id: str
    event_type: str
    payload: dict[str, Any]
    status: str
    attempts: int
    next_attempt_ms: int
    created_ms: int
    delivered_ms: int | None
    last_error: str | None
    subject_sealed: bytes | None = field(default=None, repr=False)
    subject_key_version: str | None = None


def _row(r: Any) -> OutboxRow:
    return OutboxRow(
        id=r.id,
        exchange_id=r.exchange_id,
        party_id=r.party_id,
        event_type=r.event_type,
        payload=json.loads(r.payload),
        status=r.status,
        attempts=r.attempts,
        next_attempt_ms=r.next_attempt_ms,
        created_ms=r.created_ms,
        delivered_ms=r.delivered_ms,
        last_error=r.last_error,
        subject_sealed=None if r.subject_sealed is None else bytes(r.subject_sealed),
        subject_key_version=r.subject_key_version,
    )


def _claim_statement() -> ReturningUpdate[Any]:
    c = outbox.c
    due = (
        select(c.id)
        .where(c.status == "pending", c.next_attempt_ms <= bindparam("now_ms"))
        .order_by(c.next_attempt_ms)
        .limit(bindparam("limit"))
    )
    return (
        update(outbox)
        .where(c.id.in_(due.scalar_subquery()), c.status == "pending")
        .where(c.next_attempt_ms <= bindparam("now_ms"))
        .values(next_attempt_ms=bindparam("lease_until_ms"))
        .returning(*outbox.c)
    )


def _record_statement(**values: Any) -> Update:
    c = outbox.c
    if "status" in values:  # delivered or given up: the sealed identifier goes
        values.update(subject_sealed=None, subject_key_version=None)
    return (
        update(outbox).where(c.id == bindparam("row_id")).values(attempts=c.attempts + 1, **values)
    )


# Built once: these run every cycle, and building a statement costs more than running it.
_CLAIM = _claim_statement()
_DELIVERED = _record_statement(
    status="delivered", delivered_ms=bindparam("delivered_ms"), last_error=None
)
_RETRIED = _record_statement(last_error=bindparam("error"), next_attempt_ms=bindparam("next"))
_FAILED = _record_statement(status="failed", last_error=bindparam("error"))


class OutboxStore:
    """Reads and state changes of outbox rows (each its own short transaction)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._gate = write_gate(engine)

    def claim_due(self, now_ms: int, *, limit: int, lease_ms: int) -> list[OutboxRow]:
        """Pending rows due by ``now_ms`` (at most ``limit``, those due longest first), each
        claimed for ``lease_ms``: another process will not take it meanwhile, and a crash
        mid-delivery makes it due again when the lease ends. Returned as claimed (their
        ``next_attempt_ms`` is the end of the lease), oldest first.

        One statement (an update of the due rows that returns them): a row another process
        claims meanwhile fails its re-checked conditions and is left out."""
        params = {"now_ms": now_ms, "limit": limit, "lease_until_ms": now_ms + lease_ms}
        with self._gate.held(), self._engine.begin() as conn:
            rows = conn.execute(_CLAIM, params).all()
        return sorted((_row(r) for r in rows), key=lambda r: r.created_ms)

    def record(self, outcomes: Sequence[Outcome]) -> None:
        """Record the attempts of one delivery cycle in one transaction: delivered rows lose
        their sealed identifier; failed ones are retried at ``next_attempt_ms`` or, without
        one, given up (and lose it too)."""
        if not outcomes:
            return
        delivered, retried, failed = [], [], []
        for o in outcomes:
            if o.delivered_ms is not None:
                delivered.append({"row_id": o.row_id, "delivered_ms": o.delivered_ms})
                continue
            error = (o.error or "failed")[:2000]
            if o.next_attempt_ms is not None:
                retried.append({"row_id": o.row_id, "error": error, "next": o.next_attempt_ms})
            else:
                failed.append({"row_id": o.row_id, "error": error})
        with self._gate.held(), self._engine.begin() as conn:
            for statement, params in (
                (_DELIVERED, delivered),
                (_RETRIED, retried),
                (_FAILED, failed),
            ):
                if params:
                    conn.execute(statement, params)

    def get(self, row_id: str) -> OutboxRow | None:
        with self._engine.connect() as conn:
            r = conn.execute(select(outbox).where(outbox.c.id == row_id)).first()
        return None if r is None else _row(r)

    def for_exchange(self, exchange_id: str) -> list[OutboxRow]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(outbox).where(outbox.c.exchange_id == exchange_id).order_by(outbox.c.id)
            ).all()
        return [_row(r) for r in rows]

    def list(
        self, *, status: str | None = None, party_id: str | None = None, limit: int = 100
    ) -> list[OutboxRow]:
        query = select(outbox).order_by(outbox.c.created_ms.desc()).limit(limit)
        if status is not None:
            query = query.where(outbox.c.status == status)
        if party_id is not None:
            query = query.where(outbox.c.party_id == party_id)
        with self._engine.connect() as conn:
            return [_row(r) for r in conn.execute(query).all()]

    def counts(self) -> dict[str, int]:
        """Rows by status (for metrics and ``broker webhooks outbox``)."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(outbox.c.status, func.count()).group_by(outbox.c.status)
            ).all()
        found = {str(s): int(n) for s, n in rows}
        return {s: found.get(s, 0) for s in STATUSES}

    def retry(self, row_ids: Sequence[str], now_ms: int) -> int:
        """Make failed rows pending again (an operator fixed the webhook); how many changed.
        Their sealed identifiers were erased when they failed, so they go without them."""
        with self._engine.begin() as conn:
            result = conn.execute(
                update(outbox)
                .where(outbox.c.id.in_(list(row_ids)), outbox.c.status == "failed")
                .values(status="pending", attempts=0, next_attempt_ms=now_ms)
            )
        return int(result.rowcount)

    def prune(self, delivered_before_ms: int, *, batch: int = 5000) -> int:
        """Delete delivered rows delivered before ``delivered_before_ms``; how many went. The
        audit log keeps the exchange; a delivered notice is only the proof it was sent, kept
        ``BROKER_OUTBOX_KEEP_DAYS``. Pending and failed rows are never pruned. In batches, so
        one run never holds the write lock long."""
        total = 0
        while True:
            with self._gate.held(), self._engine.begin() as conn:
                ids = (
                    select(outbox.c.id)
                    .where(
                        outbox.c.status == "delivered", outbox.c.delivered_ms < delivered_before_ms
                    )
                    .limit(batch)
                )
                found = [r[0] for r in conn.execute(ids).all()]
                if found:
                    conn.execute(delete(outbox).where(outbox.c.id.in_(found)))
            total += len(found)
            if len(found) < batch:
                return total
