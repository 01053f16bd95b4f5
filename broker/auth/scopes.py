"""The scopes an administrator grants per client (what each may do: docs/scopes.md)."""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    EXCHANGE = "exchange"
    """Partner systems making sharing requests."""
    GOVERNANCE = "governance"
    """A party's officers: only exchanges and agreements their own party is in."""
    OVERSIGHT = "oversight"
    """The operator's SIRO or DPO: everything."""
    CONSENT = "consent"
    """Records citizens' consents."""
    SUBJECT_ACCESS = "subject-access"
    """The citizen portal."""
    BUNDLE = "bundle"
    """OPA sidecars fetching the policy bundle."""
    ADMIN = "admin"
    AGREEMENTS_DRAFT = "agreements-draft"
    """A party's agreement drafters and signatories: drafts naming their own party."""


ALL_SCOPES: frozenset[str] = frozenset(s.value for s in Scope)


def parse_scopes(values: list[str] | str) -> list[str]:
    """Normalise a scope list (space or comma separated); raises ValueError naming unknown ones."""
    items = values.replace(",", " ").split() if isinstance(values, str) else list(values)
    unknown = sorted(set(items) - ALL_SCOPES)
    if unknown:
        raise ValueError(f"unknown scope(s): {', '.join(unknown)}; known: {sorted(ALL_SCOPES)}")
    return sorted(set(items))
