"""Who sees which exchange: the one rule every officer-facing surface applies. Pure.

A party's officers see an individual exchange only where their party asked for it (the entry's
requester party) or provided it (the entry's dataset is one their party owns in the register or
provides under a flow). Being a co-signatory of a multi-party agreement is not enough: the other
parties' lookups of named people under it are seen only as counts by party and month
(:func:`broker.console.queries.usage_by_party`). Oversight and auditors read the whole log and
take no scope.
"""

from __future__ import annotations

from collections.abc import Iterable

from broker.agreements.loader import VerifiedAgreement
from broker.agreements.register import Register
from broker.audit.search import AuditScope


def provided_datasets(
    party_id: str, agreements: Iterable[VerifiedAgreement], register: Register | None = None
) -> tuple[str, ...]:
    """The datasets ``party_id`` provides: those it owns in the register, and those any known
    agreement names it the provider of. Sorted, each once."""
    ids: set[str] = set()
    if register is not None:
        ids.update(d for d, entry in register.entries.items() if entry.owner == party_id)
    for verified in agreements:
        if verified.agreement is None:
            continue
        ids.update(f.dataset for f in verified.agreement.flows if f.provider == party_id)
    return tuple(sorted(ids))


def party_scope(
    party_id: str, agreements: Iterable[VerifiedAgreement], register: Register | None = None
) -> AuditScope:
    """The part of the log ``party_id``'s officers see: the exchanges it asked for or provided."""
    return AuditScope(party_id, provided_datasets(party_id, agreements, register))
