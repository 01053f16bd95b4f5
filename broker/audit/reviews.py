"""Break-glass reviews and their deadlines: the reviews table and the reads over it. No HTTP.

Each break-glass exchange is due for review ``review_within_days`` after it, as its agreement
version says (:data:`ReviewDays`: the caller maps ``(agreement id, version)`` to days from the
loaded agreements; an agreement no longer on file gets :data:`DEFAULT_REVIEW_DAYS`). A review
is *on time* when made by its due time, *late* after it; an unreviewed exchange is *outstanding*,
and *overdue* once its due time has passed.

Reads are capped at :data:`MAX_DEADLINES` pending exchanges (break-glass is rare; the cap keeps a
page bounded if it is not).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import BigInteger, Column, Engine, String, Table, Text, select

from broker.audit import store
from broker.audit.search import AuditScope, entry_view
from broker.audit.tables import audit_entries
from broker.db.tables import metadata

DAY_MS = 86_400_000
#: The schema's default ``review_within_days``, for exchanges under an agreement no longer on file.
DEFAULT_REVIEW_DAYS = 2
#: At most this many break-glass exchanges are read for deadlines at once.
MAX_DEADLINES = 2000

ReviewDays = Mapping[tuple[str, str], int]
"""``review_within_days`` by ``(agreement id, version)``."""

ReviewState = Literal["outstanding", "overdue", "on_time", "late"]

console_reviews = Table(
    "console_reviews",
    metadata,
    Column("exchange_id", String(36), primary_key=True),
    Column("outcome", String(20), nullable=False),
    Column("note", Text, nullable=False),
    Column("reviewer", String(100), nullable=False),
    Column("reviewer_party", String(100), nullable=False),
    Column("reviewed_ms", BigInteger, nullable=False),
)
"""Break-glass reviews (appropriate / referred, with a note); migration 0005 creates it."""


def days_for(days: ReviewDays, agreement: object) -> int:
    """The review period of an entry's ``agreement`` (its leaf's ``{"id", "version"}``)."""
    if isinstance(agreement, dict):
        found = days.get((str(agreement.get("id")), str(agreement.get("version"))))
        if found is not None:
            return found
    return DEFAULT_REVIEW_DAYS


@dataclass(frozen=True)
class Deadline:
    """One break-glass exchange's review deadline."""

    exchange_id: str
    agreement_id: str | None
    party_id: str | None
    dataset: str | None
    at_ms: int
    due_ms: int
    reviewed_ms: int | None

    def state(self, now_ms: int) -> ReviewState:
        if self.reviewed_ms is None:
            return "overdue" if now_ms > self.due_ms else "outstanding"
        return "on_time" if self.reviewed_ms <= self.due_ms else "late"


def deadline_of(entry: Mapping[str, Any], days: ReviewDays, at_ms: int) -> int:
    """The due time (ms) of a break-glass entry made at ``at_ms``."""
    return at_ms + days_for(days, entry.get("agreement")) * DAY_MS


def deadlines(
    engine: Engine,
    days: ReviewDays,
    *,
    pending_only: bool = True,
    scope: AuditScope | None = None,
    agreement_ids: list[str] | None = None,
    since_ms: int | None = None,
    until_ms: int | None = None,
    limit: int = MAX_DEADLINES,
) -> list[Deadline]:
    """Break-glass exchanges with their due and review times, soonest due first."""
    c, r = audit_entries.c, console_reviews.c
    query = (
        select(audit_entries, r.reviewed_ms)
        .join_from(audit_entries, console_reviews, r.exchange_id == c.exchange_id, isouter=True)
        .where(c.break_glass.is_(True), c.kind == "exchange")
        .order_by(c.idx.desc())
        .limit(limit)
    )
    if pending_only:
        query = query.where(r.exchange_id.is_(None))
    if scope is not None:
        query = query.where(scope.clause())
    if agreement_ids is not None:
        query = query.where(c.agreement_id.in_(agreement_ids))
    if since_ms is not None:
        query = query.where(c.at_ms >= since_ms)
    if until_ms is not None:
        query = query.where(c.at_ms < until_ms)
    with store.reading(engine) as conn:
        rows = conn.execute(query).all()
    out = []
    for row in rows:
        view = entry_view(row)
        at_ms = int(row.at_ms)
        out.append(
            Deadline(
                exchange_id=str(row.exchange_id),
                agreement_id=row.agreement_id,
                party_id=row.party_id,
                dataset=row.dataset,
                at_ms=at_ms,
                due_ms=deadline_of(view, days, at_ms),
                reviewed_ms=None if row.reviewed_ms is None else int(row.reviewed_ms),
            )
        )
    out.sort(key=lambda d: (d.due_ms, d.at_ms))
    return out


@dataclass
class ReviewCounts:
    """Break-glass reviews of one agreement: on time, late, outstanding (overdue among them)."""

    on_time: int = 0
    late: int = 0
    outstanding: int = 0
    overdue: int = 0


def review_counts(
    engine: Engine,
    days: ReviewDays,
    agreement_ids: list[str],
    *,
    since_ms: int,
    until_ms: int,
    now_ms: int,
) -> dict[str, ReviewCounts]:
    """Per agreement, the break-glass exchanges made in ``[since_ms, until_ms)`` by review state."""
    out = {a: ReviewCounts() for a in agreement_ids}
    if not agreement_ids:
        return out
    found = deadlines(
        engine,
        days,
        pending_only=False,
        agreement_ids=agreement_ids,
        since_ms=since_ms,
        until_ms=until_ms,
        limit=MAX_DEADLINES * 5,
    )
    for d in found:
        counts = out.get(d.agreement_id or "")
        if counts is None:
            continue
        state = d.state(now_ms)
        if state == "on_time":
            counts.on_time += 1
        elif state == "late":
            counts.late += 1
        else:
            counts.outstanding += 1
            if state == "overdue":
                counts.overdue += 1
    return out


def overdue_by_agreement(deadlines_: list[Deadline], now_ms: int) -> dict[str, int]:
    """How many pending reviews are overdue, per agreement id."""
    out: dict[str, int] = {}
    for d in deadlines_:
        if d.state(now_ms) == "overdue":
            key = d.agreement_id or "-"
            out[key] = out.get(key, 0) + 1
    return out
