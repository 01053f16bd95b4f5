"""Aggregate reads of the audit log for the console: usage by month, the break-glass queue, the
access report, fields released most. Parameterised SQLAlchemy Core only.

Monthly figures are one query per page: each entry's month is chosen by a ``CASE`` over the month
boundaries, so the database groups in one pass over the ``ix_console_usage`` index.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, and_, case, func, literal, select

from broker.audit import store
from broker.audit.entry import parse_leaf
from broker.audit.search import AuditScope, decode_cursor, encode_cursor, entry_view
from broker.audit.tables import audit_entries
from broker.console.tables import console_reviews

#: How many of an agreement's newest allowed exchanges "fields released most" looks at.
FIELDS_SAMPLE = 2000


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def add_months(day: dt.date, n: int) -> dt.date:
    y, m = divmod(day.month - 1 + n, 12)
    return dt.date(day.year + y, m + 1, 1)


def month_ms(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)


def months_ending(last: dt.date, count: int) -> list[dt.date]:
    """``count`` month starts, oldest first, the last being ``last``'s month."""
    end = month_start(last)
    return [add_months(end, -i) for i in range(count - 1, -1, -1)]


@dataclass
class MonthFigures:
    """One month's exchanges: allowed, denied, other outcomes (held, error), break-glass."""

    month: dt.date
    allow: int = 0
    deny: int = 0
    other: int = 0
    break_glass: int = 0

    @property
    def total(self) -> int:
        return self.allow + self.deny + self.other

    @property
    def label(self) -> str:
        return self.month.strftime("%b %Y")


@dataclass
class AgreementFigures:
    agreement_id: str
    months: list[MonthFigures] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(m.total for m in self.months)

    @property
    def allow(self) -> int:
        return sum(m.allow for m in self.months)

    @property
    def deny(self) -> int:
        return sum(m.deny for m in self.months)

    @property
    def break_glass(self) -> int:
        return sum(m.break_glass for m in self.months)


def monthly_figures(
    engine: Engine, agreement_ids: Sequence[str], months: Sequence[dt.date]
) -> dict[str, AgreementFigures]:
    """Per agreement, per month (UTC months starting at each of ``months``), the counts.

    Only exchanges are counted (not audit reads or admin actions).
    """
    out = {a: AgreementFigures(a, [MonthFigures(m) for m in months]) for a in agreement_ids}
    if not agreement_ids or not months:
        return out
    c = audit_entries.c
    bounds = [month_ms(m) for m in [*months, add_months(months[-1], 1)]]
    bucket = case(
        *[(c.at_ms < bounds[i + 1], literal(i)) for i in range(len(months))],
        else_=literal(-1),
    ).label("bucket")
    query = (
        select(c.agreement_id, bucket, c.decision, c.break_glass, func.count().label("n"))
        .where(
            c.agreement_id.in_(list(agreement_ids)),
            c.at_ms >= bounds[0],
            c.at_ms < bounds[-1],
            c.kind == "exchange",
        )
        .group_by(c.agreement_id, bucket, c.decision, c.break_glass)
    )
    with store.reading(engine) as conn:
        rows = conn.execute(query).all()
    for agreement_id, index, decision, break_glass, n in rows:
        if index < 0 or agreement_id not in out:
            continue
        month = out[agreement_id].months[index]
        if decision == "allow":
            month.allow += n
        elif decision == "deny":
            month.deny += n
        else:
            month.other += n
        if break_glass:
            month.break_glass += n
    return out


def fields_released_most(
    engine: Engine, agreement_id: str, *, sample: int = FIELDS_SAMPLE, top: int = 10
) -> tuple[list[tuple[str, int]], int]:
    """The most released field names among the agreement's newest ``sample`` allowed
    exchanges: ``([(field, count)], exchanges looked at)``."""
    c = audit_entries.c
    query = (
        select(c.leaf)
        .where(c.agreement_id == agreement_id, c.kind == "exchange", c.decision == "allow")
        .order_by(c.idx.desc())
        .limit(sample)
    )
    counts: Counter[str] = Counter()
    with store.reading(engine) as conn:
        rows = conn.execute(query).all()
    for (leaf,) in rows:
        _, body = parse_leaf(bytes(leaf))
        counts.update(str(f) for f in body.get("released_fields") or ())
    return counts.most_common(top), len(rows)


@dataclass(frozen=True)
class Review:
    outcome: str
    note: str
    reviewer: str
    reviewer_party: str
    reviewed_ms: int


@dataclass(frozen=True)
class QueueItem:
    entry: dict[str, object]
    review: Review | None


@dataclass(frozen=True)
class QueuePage:
    items: list[QueueItem]
    next_cursor: str | None


def break_glass_queue(
    engine: Engine,
    *,
    status: str = "pending",
    scope: AuditScope | None = None,
    cursor: str | None = None,
    limit: int = 25,
) -> QueuePage:
    """Break-glass exchanges, newest first, with their review if any. ``status`` is ``pending``
    (not yet reviewed), ``reviewed`` or ``all``. Raises AuditQueryError for a bad cursor."""
    c, r = audit_entries.c, console_reviews.c
    query = (
        select(audit_entries, r.outcome, r.note, r.reviewer, r.reviewer_party, r.reviewed_ms)
        .join_from(audit_entries, console_reviews, r.exchange_id == c.exchange_id, isouter=True)
        .where(c.break_glass.is_(True), c.kind == "exchange")
        .order_by(c.idx.desc())
        .limit(limit + 1)
    )
    if status == "pending":
        query = query.where(r.exchange_id.is_(None))
    elif status == "reviewed":
        query = query.where(r.exchange_id.is_not(None))
    if scope is not None:
        query = query.where(scope.clause())
    if cursor:
        query = query.where(c.idx < decode_cursor(cursor))
    with store.reading(engine) as conn:
        rows = conn.execute(query).all()
    more = len(rows) > limit
    rows = rows[:limit]
    items = []
    for row in rows:
        review = (
            None
            if row.outcome is None
            else Review(row.outcome, row.note, row.reviewer, row.reviewer_party, row.reviewed_ms)
        )
        items.append(QueueItem(entry_view(row), review))
    return QueuePage(items, encode_cursor(int(rows[-1].idx)) if more and rows else None)


def review_of(engine: Engine, exchange_id: str) -> Review | None:
    r = console_reviews.c
    with engine.connect() as conn:
        row = conn.execute(
            select(r.outcome, r.note, r.reviewer, r.reviewer_party, r.reviewed_ms).where(
                r.exchange_id == exchange_id
            )
        ).first()
    return None if row is None else Review(*row)


def subject_exchanges(
    engine: Engine, pseudonyms: Sequence[str], *, scope: AuditScope | None = None, limit: int = 1000
) -> list[dict[str, object]]:
    """Every exchange about the subject with one of ``pseudonyms``, newest first."""
    c = audit_entries.c
    conditions: list[Any] = [c.subject_pseudonym.in_(list(pseudonyms)), c.kind == "exchange"]
    if scope is not None:
        conditions.append(scope.clause())
    query = select(audit_entries).where(and_(*conditions)).order_by(c.idx.desc()).limit(limit)
    with store.reading(engine) as conn:
        rows = conn.execute(query).all()
    return [entry_view(r) for r in rows]


def count_pending_break_glass(engine: Engine, scope: AuditScope | None = None) -> int:
    c, r = audit_entries.c, console_reviews.c
    query = (
        select(func.count())
        .select_from(audit_entries)
        .join(console_reviews, r.exchange_id == c.exchange_id, isouter=True)
        .where(c.break_glass.is_(True), c.kind == "exchange", r.exchange_id.is_(None))
    )
    if scope is not None:
        query = query.where(scope.clause())
    with store.reading(engine) as conn:
        return int(conn.execute(query).scalar_one())
