"""Who may do what in the console, and which part of the log each officer sees. Pure.

Permissions follow the API's scopes: a party's governance officer sees the exchanges its party
asked for or provided (:func:`broker.agreements.visibility.party_scope`, the rule every surface
applies), and its agreements' usage by other parties only as counts; oversight and auditors see
everything; agreement admins see agreements and their figures, never an exchange
record about a person.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from broker.agreements.loader import VerifiedAgreement
from broker.agreements.register import Register
from broker.agreements.visibility import party_scope
from broker.audit.search import AuditScope
from broker.console.accounts import Account, Role


class Permission(StrEnum):
    EXCHANGES = "exchanges"
    AGREEMENTS = "agreements"
    BREAK_GLASS = "break-glass"
    REVIEW = "review"
    INTEGRITY = "integrity"
    VERIFY = "verify"
    REPORTS = "reports"
    ACCESS_REPORT = "access-report"
    USERS = "users"
    """Every exchange one verified user of the officer's party made; the party's suspended users."""
    SUSPEND_USERS = "suspend-users"
    """Suspend and reinstate the verified users of the officer's own party."""


_ALL = frozenset(Permission)
GRANTS: dict[Role, frozenset[Permission]] = {
    # Suspending a user is the act of that user's own party (its governance officers).
    Role.OVERSIGHT: _ALL - {Permission.SUSPEND_USERS},
    Role.GOVERNANCE: _ALL - {Permission.VERIFY},
    Role.AUDITOR: _ALL - {Permission.REVIEW, Permission.ACCESS_REPORT, Permission.SUSPEND_USERS},
    Role.AGREEMENT_ADMIN: frozenset(
        {Permission.AGREEMENTS, Permission.INTEGRITY, Permission.REPORTS}
    ),
}


def allowed(account: Account, permission: Permission) -> bool:
    return permission in GRANTS.get(account.role, frozenset())


def party_wide(account: Account) -> bool:
    """True when the officer sees every party's data (not limited to its own)."""
    return account.role is not Role.GOVERNANCE


def visible_agreements(
    account: Account, agreements: Iterable[VerifiedAgreement]
) -> list[VerifiedAgreement]:
    """The agreements this officer may see (a governance officer: those its party is in)."""
    out = []
    for a in agreements:
        mine = a.agreement is not None and a.agreement.party(account.party_id) is not None
        if party_wide(account) or mine:
            out.append(a)
    return out


def audit_scope(
    account: Account, agreements: Iterable[VerifiedAgreement], register: Register | None = None
) -> AuditScope | None:
    """The search scope for this officer; None means the whole log."""
    if party_wide(account):
        return None
    return party_scope(account.party_id, agreements, register)
