"""``GET /v1/break-glass/reviews``: break-glass exchanges with their review deadlines; and the
periodic escalation of overdue reviews (webhook notification and gauge).

A party's officers see the exchanges within their audit scope; oversight sees all.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool

from broker.agreements.break_glass import review_days
from broker.api.audit import scope_for
from broker.api.deps import Principal, ServicesDep, require_scope
from broker.audit.reviews import ReviewDays, deadlines
from broker.audit.search import audit_read_entry
from broker.container import Services
from broker.core.errors import InvalidInput
from broker.notify.escalation import EscalationRound, escalate_overdue

router = APIRouter(tags=["audit"])
Officer = Annotated[Principal, Depends(require_scope("governance", "oversight"))]

#: How often (by the services' clock) the escalation job looks for overdue reviews.
ESCALATION_SECONDS = 60.0


def current_review_days(services: Services) -> ReviewDays:
    last = services.policy_runtime.last
    return review_days(last.agreements) if last is not None else {}


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat().replace("+00:00", "Z")


@router.get("/v1/break-glass/reviews", summary="Break-glass reviews with due dates, overdue first")
async def break_glass_reviews(
    principal: Officer, services: ServicesDep, status: str = "pending"
) -> dict[str, Any]:
    """``status``: ``pending`` (not yet reviewed: outstanding or overdue) or ``all``."""
    if status not in ("pending", "all"):
        raise InvalidInput("status must be pending or all")
    scope = scope_for(principal, services)
    services.audit.append(
        audit_read_entry(
            client_id=principal.client_id,
            party_id=principal.party_id,
            resource="break-glass-reviews",
            query={"status": status},
        )
    )
    found = await run_in_threadpool(
        deadlines,
        services.engine,
        current_review_days(services),
        pending_only=status == "pending",
        scope=scope,
    )
    now_ms = int(services.clock() * 1000)
    return {
        "now": _iso(now_ms),
        "reviews": [
            {
                "exchange_id": d.exchange_id,
                "agreement_id": d.agreement_id,
                "party_id": d.party_id,
                "dataset": d.dataset,
                "occurred_at": _iso(d.at_ms),
                "review_due": _iso(d.due_ms),
                "reviewed_at": None if d.reviewed_ms is None else _iso(d.reviewed_ms),
                "state": d.state(now_ms),
            }
            for d in found
        ],
    }


def escalate(services: Services) -> EscalationRound:
    """One round of the escalation job: queue notifications for newly overdue reviews, wake
    the delivery worker, and set the gauge of overdue reviews per agreement."""
    days = current_review_days(services)
    result = escalate_overdue(services.engine, days, int(services.clock() * 1000))
    if result.escalated:
        services.notifications.wake()
    gauge = services.metrics.break_glass_overdue
    for agreement_id in {a for a, _ in days} | set(result.overdue):
        gauge.labels(agreement=agreement_id).set(result.overdue.get(agreement_id, 0))
    return result
