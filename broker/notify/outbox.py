"""The outbox: provider notifications written with the audit entry, read by the delivery worker.

The exchange pipeline calls :func:`enqueue_notification` on the connection of the audit commit
(``AuditLog.append(entry, extras=[...])``), so a notification exists exactly when its exchange is
in the log. The worker claims due rows (:meth:`OutboxStore.claim_due`, safe with several broker
processes: a claim is a conditional update that pushes ``next_attempt_ms`` forward by a lease), and
records each attempt. Delivery is at least once; the ``webhook-id`` header (the row id) lets the
provider drop duplicates.

What the provider is sent, and why (an explicit choice): the payload names the exchange, the
agreement, flow, purpose and dataset, who asked (party, system, role), when, whether it was
break-glass, which fields were released, and the subject's keyed pseudonym. The subject's own
identifier is added only when the pipeline passes ``subject``: it should do so for the provider of
the dataset the record was just fetched from, under a flow with ``notify_provider: true``. That
provider already holds the record under that identifier (the broker fetched it from there), so
telling it which of its own records was shared reveals no identifier it does not hold, and the
signed agreement names this notice as its purpose. Without it a notice would be useless: a
pseudonym keyed by the broker means nothing to the provider. The identifier is never stored in
clear (see :mod:`broker.notify.sealing`) and is erased from the row once delivered or given up.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from sqlalchemy import Connection, Engine, func, insert, select, update

from broker.core.identifiers import SubjectId
from broker.core.pseudonym import Pseudonym
from broker.notify.sealing import SubjectSealer
from broker.notify.tables import outbox

EVENT_RECORD_SHARED = "exchange.record-shared"
"""A provider's record was released to a recipient (the flow says ``notify_provider``)."""

Status = Literal["pending", "delivered", "failed"]
STATUSES: tuple[Status, ...] = ("pending", "delivered", "failed")


@dataclass(frozen=True)
class ProviderNotice:
    """What a provider is told about one exchange of its data (no identifier in clear)."""

    exchange_id: str
    provider_party: str
    """The party to notify: the dataset's provider (``Obligations.notify_provider``)."""
    occurred_at_ms: int
    agreement_id: str
    purpose: str
    dataset: str
    requesting_party: str
    requesting_client: str
    summary: str
    """One line a caseworker reads, e.g. "Emergency Department safeguarding at Calderbridge
    Hospitals NHS Foundation Trust checked this child's child protection record"."""
    flow_id: str | None = None
    requester_role: str | None = None
    break_glass: bool = False
    released_fields: tuple[str, ...] = ()
    subject_pseudonym: Pseudonym | None = None
    event_type: str = EVENT_RECORD_SHARED

    def to_payload(self) -> dict[str, Any]:
        """The stored payload (JSON-ready; the sealed identifier is added at delivery)."""
        data = asdict(self)
        data.pop("event_type")
        data.pop("provider_party")
        data["released_fields"] = list(self.released_fields)
        return data


def default_summary(requesting_system: str, requesting_party: str, dataset: str) -> str:
    """The notice's one line when the pipeline has nothing better, from the names the registry
    holds (e.g. "Emergency Department safeguarding at Calderbridge Hospitals NHS Foundation Trust
    received this person's ccc.child-protection record")."""
    return f"{requesting_system} at {requesting_party} received this person's {dataset} record"


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
    conn.execute(
        insert(outbox).values(
            id=row_id,
            exchange_id=notice.exchange_id,
            party_id=notice.provider_party,
            event_type=notice.event_type,
            payload=json.dumps(notice.to_payload(), sort_keys=True, separators=(",", ":")),
            subject_sealed=sealed,
            subject_key_version=version,
            status="pending",
            attempts=0,
            next_attempt_ms=now_ms,
            created_ms=now_ms,
        )
    )
    return row_id


def backoff_seconds(
    attempts: int, *, base_seconds: float, max_seconds: float, rng: random.Random | None = None
) -> float:
    """Delay before the next try after ``attempts`` failed ones: exponential, capped, with
    "equal jitter" (between half and all of ``base * 2**(attempts-1)``) so retries spread out."""
    ceiling = min(max_seconds, base_seconds * 2.0 ** max(0, attempts - 1))
    jitter: float = (rng or random.Random()).random()  # noqa: S311 - jitter, not a secret
    return ceiling / 2 + jitter * ceiling / 2


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


class OutboxStore:
    """Reads and state changes of outbox rows (each its own short transaction)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def claim_due(self, now_ms: int, *, limit: int, lease_ms: int) -> list[OutboxRow]:
        """Pending rows due by ``now_ms``, each claimed for ``lease_ms`` (another process will
        not take it meanwhile; a crash mid-delivery makes it due again when the lease ends)."""
        c = outbox.c
        with self._engine.begin() as conn:
            due = conn.execute(
                select(outbox)
                .where(c.status == "pending", c.next_attempt_ms <= now_ms)
                .order_by(c.next_attempt_ms)
                .limit(limit)
            ).all()
            claimed = []
            for r in due:
                result = conn.execute(
                    update(outbox)
                    .where(
                        c.id == r.id,
                        c.status == "pending",
                        c.next_attempt_ms == r.next_attempt_ms,
                    )
                    .values(next_attempt_ms=now_ms + lease_ms)
                )
                if result.rowcount == 1:
                    claimed.append(_row(r))
        return claimed

    def delivered(self, row_id: str, now_ms: int) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(outbox)
                .where(outbox.c.id == row_id)
                .values(
                    status="delivered",
                    attempts=outbox.c.attempts + 1,
                    delivered_ms=now_ms,
                    last_error=None,
                    subject_sealed=None,
                    subject_key_version=None,
                )
            )

    def attempt_failed(self, row_id: str, error: str, *, next_attempt_ms: int | None) -> None:
        """Record a failed attempt: retry at ``next_attempt_ms``, or give up when None."""
        values: dict[str, Any] = {"attempts": outbox.c.attempts + 1, "last_error": error[:2000]}
        if next_attempt_ms is None:
            values.update(status="failed", subject_sealed=None, subject_key_version=None)
        else:
            values["next_attempt_ms"] = next_attempt_ms
        with self._engine.begin() as conn:
            conn.execute(update(outbox).where(outbox.c.id == row_id).values(**values))

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
