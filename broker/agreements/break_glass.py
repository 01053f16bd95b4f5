"""How long each agreement version gives for reviewing a break-glass exchange. Pure."""

from __future__ import annotations

from collections.abc import Iterable

from broker.agreements.loader import VerifiedAgreement


def review_days(agreements: Iterable[VerifiedAgreement]) -> dict[tuple[str, str], int]:
    """``review_within_days`` by ``(agreement id, version)``: the shortest of its break-glass
    flows (an exchange's flow is not in the log's columns, so the strictest period applies)."""
    out: dict[tuple[str, str], int] = {}
    for verified in agreements:
        a = verified.agreement
        if a is None:
            continue
        periods = [
            f.conditions.break_glass.review_within_days
            for f in a.flows
            if f.conditions.break_glass is not None
        ]
        if periods:
            out[(a.id, str(a.version))] = min(periods)
    return out
