"""Counts of exchanges of one dataset per agreement (the register's "usage"). No person named."""

from __future__ import annotations

from sqlalchemy import Engine, func, select

from broker.audit import store
from broker.audit.tables import audit_entries


def exchanges_by_agreement(engine: Engine, dataset: str) -> dict[str, int]:
    """How many exchanges of ``dataset`` the log holds under each agreement id."""
    c = audit_entries.c
    query = (
        select(c.agreement_id, func.count())
        .where(c.dataset == dataset, c.kind == "exchange", c.agreement_id.is_not(None))
        .group_by(c.agreement_id)
    )
    with store.reading(engine) as conn:
        return {str(a): int(n) for a, n in conn.execute(query).all()}
