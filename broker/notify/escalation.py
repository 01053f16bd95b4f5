"""Overdue break-glass reviews escalated, once each, to the requesting party's webhook.

A periodic job (on the instance holding the audit jobs' lease) calls :func:`escalate_overdue`: every
pending break-glass review past its due time gets one outbox row of type
:data:`EVENT_REVIEW_OVERDUE` for the party whose user broke glass (its governance officers review
it). The row is written only if none exists for that exchange and type, in one transaction, so an
exchange is escalated once; the outbox's delivery claims make it delivered once across instances.
The payload names no person: the exchange, agreement, dataset, party and times only.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass

from sqlalchemy import Engine, insert, select

from broker.audit.reviews import ReviewDays, deadlines, overdue_by_agreement
from broker.notify.tables import outbox

EVENT_REVIEW_OVERDUE = "break-glass.review-overdue"


@dataclass(frozen=True)
class EscalationRound:
    overdue: dict[str, int]
    """Overdue pending reviews per agreement id (what the gauge shows)."""
    escalated: list[str]
    """Exchange ids escalated in this round (each only once, ever)."""


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat().replace("+00:00", "Z")


def escalate_overdue(engine: Engine, days: ReviewDays, now_ms: int) -> EscalationRound:
    """Queue a notification for each overdue review not yet escalated; return the counts."""
    pending = deadlines(engine, days, pending_only=True)
    overdue = [d for d in pending if d.state(now_ms) == "overdue" and d.party_id]
    escalated: list[str] = []
    o = outbox.c
    for d in overdue:
        payload = {
            "exchange_id": d.exchange_id,
            "agreement_id": d.agreement_id,
            "dataset": d.dataset,
            "requesting_party": d.party_id,
            "occurred_at": _iso(d.at_ms),
            "review_due": _iso(d.due_ms),
            "summary": "A break-glass exchange by your party has not been reviewed by its due date",
        }
        with engine.begin() as conn:
            seen = conn.execute(
                select(o.id).where(
                    o.exchange_id == d.exchange_id, o.event_type == EVENT_REVIEW_OVERDUE
                )
            ).first()
            if seen is not None:
                continue
            conn.execute(
                insert(outbox).values(
                    id=str(uuid.uuid4()),
                    exchange_id=d.exchange_id,
                    party_id=d.party_id,
                    event_type=EVENT_REVIEW_OVERDUE,
                    payload=json.dumps(payload, sort_keys=True, separators=(",", ":")),
                    subject_sealed=None,
                    subject_key_version=None,
                    status="pending",
                    attempts=0,
                    next_attempt_ms=now_ms,
                    created_ms=now_ms,
                )
            )
        escalated.append(d.exchange_id)
    return EscalationRound(overdue_by_agreement(pending, now_ms), escalated)
