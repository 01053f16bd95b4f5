"""A citizen's ID token (NHS login, GOV.UK One Login): the person it proves (pure: no I/O).

The token passes every check of an ID token (:func:`broker.identity.id_tokens.checked_claims`:
signature, algorithm allow-list, ``iss``, ``aud``/``azp``, ``exp``, recent ``iat``, ``auth_time``)
and then says who the person is at the assurance the provider registration requires: the
assurance claim (NHS login's ``identity_proofing_level``, One Login's ``vot``) holds one of the
accepted values, and the identifier claim (NHS login's verified ``nhs_number``) holds a valid
personal identifier. The token names no role: a citizen acts for themselves only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from broker.core.errors import InvalidInput
from broker.core.identifiers import parse_subject
from broker.identity.errors import IdTokenRejected
from broker.identity.id_tokens import (
    MAX_SESSION_SECONDS,
    NamedKey,
    ProviderRules,
    checked_claims,
)

#: The personal identifiers a citizen's identity may be linked to.
CITIZEN_IDENTIFIER_TYPES: frozenset[str] = frozenset({"nhs_number", "person_id"})


@dataclass(frozen=True)
class CitizenRules:
    """What a citizen provider's token must say about the person, beyond an ID token's checks."""

    identifier_claim: str = "nhs_number"
    identifier_type: str = "nhs_number"
    assurance_claim: str = "identity_proofing_level"
    assurance_values: frozenset[str] = frozenset({"P9"})


@dataclass(frozen=True)
class VerifiedCitizen:
    """The person a citizen's ID token proves, and how."""

    issuer: str
    subject: str
    identifier_type: str
    identifier: str = ""
    """The identifier in normal form (the citizen's own: carried in their token, never logged)."""
    verified_by: str = ""
    """The claim that carried the identifier."""
    assurance: str = ""
    """``claim=value`` of the assurance the token came with."""
    expires_at: float = 0.0
    fingerprint: str = ""
    """SHA-256 (hex) of the token's signed part: its identity for replay checks."""

    def __repr__(self) -> str:  # never the identifier
        return f"VerifiedCitizen(issuer={self.issuer!r}, identifier_type={self.identifier_type!r})"


def citizen_claims(
    claims: Mapping[str, Any], issuer: str, user: str, rules: CitizenRules
) -> VerifiedCitizen:
    """The citizen the verified ``claims`` name, or :class:`IdTokenRejected` naming what is
    missing: the assurance below what is required, or no valid identifier claim."""
    assurance = claims.get(rules.assurance_claim)
    if not isinstance(assurance, str) or assurance not in rules.assurance_values:
        wanted = " or ".join(sorted(rules.assurance_values))
        raise IdTokenRejected(
            "assurance",
            f"the token's {rules.assurance_claim} is {assurance!r}: {wanted} is required "
            "(the person's identity must be verified)",
        )
    value = claims.get(rules.identifier_claim)
    if not isinstance(value, str) or not value:
        raise IdTokenRejected(
            "identifier", f"the token has no {rules.identifier_claim} claim naming the person"
        )
    try:
        subject = parse_subject(rules.identifier_type, value)
    except InvalidInput as e:
        raise IdTokenRejected(
            "identifier",
            f"the token's {rules.identifier_claim} is not a valid {rules.identifier_type}",
        ) from e
    return VerifiedCitizen(
        issuer=issuer,
        subject=user,
        identifier_type=subject.type,
        identifier=subject.value,
        verified_by=rules.identifier_claim,
        assurance=f"{rules.assurance_claim}={assurance}",
    )


def check_citizen_token(
    token: str,
    keys: Sequence[NamedKey],
    rules: ProviderRules,
    citizen: CitizenRules,
    *,
    now: float,
    max_age_seconds: int = 600,
    skew_seconds: int = 30,
    max_session_seconds: int = MAX_SESSION_SECONDS,
) -> VerifiedCitizen:
    """The verified citizen, or :class:`IdTokenRejected` (``UnknownKey`` for an unknown kid)."""
    claims, user = checked_claims(
        token,
        keys,
        rules,
        now=now,
        max_age_seconds=max_age_seconds,
        skew_seconds=skew_seconds,
        max_session_seconds=max_session_seconds,
    )
    found = citizen_claims(claims, rules.issuer, user, citizen)
    exp = claims["exp"]  # checked a number by checked_claims
    return VerifiedCitizen(
        issuer=found.issuer,
        subject=found.subject,
        identifier_type=found.identifier_type,
        identifier=found.identifier,
        verified_by=found.verified_by,
        assurance=found.assurance,
        expires_at=float(exp),
        fingerprint=hashlib.sha256(token.rsplit(".", 1)[0].encode()).hexdigest(),
    )
