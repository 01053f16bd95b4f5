"""An agreement's usage as counts by party and month: what its co-signatories see of each
other's exchanges (never an individual exchange: who, whom, when or why). Parameterised SQL.

Each entry's month is chosen by a ``CASE`` over the UTC month boundaries so that the database
groups in one pass over the ``ix_console_usage`` index.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine, case, func, literal, select

from broker.audit import store
from broker.audit.tables import audit_entries

MAX_MONTHS = 36


def _month_ms(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, 1, tzinfo=dt.UTC).timestamp() * 1000)


def _next_month(day: dt.date) -> dt.date:
    return dt.date(day.year + (day.month == 12), day.month % 12 + 1, 1)


@dataclass
class PartyUsage:
    """One party's exchanges under the agreement: allowed, denied and other, per month."""

    party_id: str
    counts: list[int] = field(default_factory=list)
    """Exchanges (any outcome) in each month, in the order of the months asked for."""
    allowed: list[int] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts)

    def to_json(self, months: Sequence[dt.date]) -> dict[str, object]:
        return {
            "party_id": self.party_id,
            "total": self.total,
            "months": [
                {"month": m.strftime("%Y-%m"), "exchanges": n, "allowed": a}
                for m, n, a in zip(months, self.counts, self.allowed, strict=True)
            ],
        }


def usage_by_party(
    engine: Engine, agreement_id: str, months: Sequence[dt.date]
) -> list[PartyUsage]:
    """Exchanges under ``agreement_id`` in each of ``months`` (first days, oldest first), by
    requesting party, sorted by party id. Only counts leave this function."""
    if not months:
        return []
    c = audit_entries.c
    bounds = [_month_ms(m) for m in months] + [_month_ms(_next_month(months[-1]))]
    bucket = case(
        *[(c.at_ms < bounds[i + 1], literal(i)) for i in range(len(months))],
        else_=literal(-1),
    ).label("bucket")
    query = (
        select(c.party_id, bucket, c.decision, func.count().label("n"))
        .where(
            c.agreement_id == agreement_id,
            c.at_ms >= bounds[0],
            c.at_ms < bounds[-1],
            c.kind == "exchange",
        )
        .group_by(c.party_id, bucket, c.decision)
    )
    with store.reading(engine) as conn:
        rows = conn.execute(query).all()
    out: dict[str, PartyUsage] = {}
    for party_id, index, decision, n in rows:
        if index < 0:
            continue
        usage = out.setdefault(
            str(party_id), PartyUsage(str(party_id), [0] * len(months), [0] * len(months))
        )
        usage.counts[index] += int(n)
        if decision == "allow":
            usage.allowed[index] += int(n)
    return [out[k] for k in sorted(out)]


def exchanges_by_agreement(engine: Engine, dataset: str) -> dict[str, int]:
    """How many exchanges of ``dataset`` the log holds under each agreement id (the register's
    "usage"; no person named)."""
    c = audit_entries.c
    query = (
        select(c.agreement_id, func.count())
        .where(c.dataset == dataset, c.kind == "exchange", c.agreement_id.is_not(None))
        .group_by(c.agreement_id)
    )
    with store.reading(engine) as conn:
        return {str(a): int(n) for a, n in conn.execute(query).all()}
