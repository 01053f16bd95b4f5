"""Checking one OIDC ID token against a provider's keys and rules (pure: no I/O, no clock).

Checks, in order: the compact form; the algorithm (the provider's allow-list within the broker's
asymmetric algorithms: never ``none``, never HMAC, whose "key" would be public); the key (by
``kid``, else the only key of the algorithm's type); the signature; ``iss`` equal to the
registered issuer; ``aud`` containing the requesting system's audience at that provider (and
``azp`` equal to it when there are several audiences, OIDC Core 3.1.3.7); ``exp`` in the future;
``nbf`` (if any) passed; ``iat`` within the last ``max_age_seconds`` (default ten minutes);
``auth_time`` (if any) within the last ``max_session_seconds`` (twelve hours); the user claim; the
roles (broker/identity/roles.py: a role claim mapped through the registration's role map, or
CIS2's selected role at the requesting organisation). ``skew_seconds`` allows for clocks a
little apart.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from joserfc.errors import JoseError

from broker.auth.jose import (
    CLIENT_ASSERTION_ALGORITHMS,
    KEY_TYPE_FOR_ALG,
    MalformedJose,
    PublicKey,
    unverified_parts,
    verify_compact,
)
from broker.identity.errors import IdTokenRejected
from broker.identity.roles import RoleRules, choose_role, claim_at, roles_from_claims

#: The algorithms an ID token may be signed with: the broker's asymmetric allow-list.
ID_TOKEN_ALGORITHMS: frozenset[str] = CLIENT_ASSERTION_ALGORITHMS
#: How long ago the user may have signed in (``auth_time``): a longer session signs in again.
MAX_SESSION_SECONDS = 12 * 3600


@dataclass(frozen=True)
class VerifiedUser:
    """The person an ID token vouches for."""

    user_id: str
    role: str
    issuer: str


@dataclass(frozen=True)
class VerifiedPerson:
    """The person an ID token vouches for, with every role it gives (for token exchange)."""

    user_id: str
    issuer: str
    roles: tuple[str, ...]
    name: str | None
    expires_at: float
    fingerprint: str
    """SHA-256 (hex) of the token's signed part (header and payload, not the signature, which an
    ECDSA holder can re-encode): its identity for replay checks, never the token itself."""


@dataclass(frozen=True)
class ProviderRules:
    """What a token from one provider must satisfy."""

    issuer: str
    audience: str
    user_claim: str = "sub"
    role_claim: str = "role"
    """A claim name, or a dotted path into nested claims (``realm_access.roles``)."""
    algorithms: frozenset[str] = ID_TOKEN_ALGORITHMS
    role_format: str = "claim"
    role_map: Mapping[str, str] = field(default_factory=dict)
    org_code: str | None = None
    """The requesting party's ODS code (else its id), for ``cis2`` roles."""

    @property
    def role_rules(self) -> RoleRules:
        return RoleRules(self.role_format, self.role_claim, self.role_map, self.org_code)


@dataclass(frozen=True)
class NamedKey:
    kid: str | None
    key: PublicKey


class UnknownKey(IdTokenRejected):
    """No key of the set matches: the caller may refresh the set once and try again."""


def _number(claims: Mapping[str, Any], name: str) -> float:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise IdTokenRejected("claims", f"the {name} claim is missing or not a number")
    return float(value)


def _key_for(header: Mapping[str, Any], alg: str, keys: Sequence[NamedKey]) -> PublicKey:
    kid = header.get("kid")
    wanted_type = KEY_TYPE_FOR_ALG[alg]
    if kid is not None:
        matches = [k.key for k in keys if k.kid == kid]
    else:
        matches = [k.key for k in keys if k.key.key_type == wanted_type]
        if len(matches) > 1:
            raise IdTokenRejected("key", "the token names no kid and the provider has several keys")
    if not matches:
        raise UnknownKey("key", "no key of the provider matches the token's kid")
    if matches[0].key_type != wanted_type:
        raise IdTokenRejected("key", f"the key {kid!r} is not a {wanted_type} key for {alg}")
    return matches[0]


def _checked_claims(
    token: str,
    keys: Sequence[NamedKey],
    rules: ProviderRules,
    *,
    now: float,
    max_age_seconds: int,
    skew_seconds: int,
    max_session_seconds: int,
) -> tuple[Mapping[str, Any], str]:
    """The verified claims and the user, or :class:`IdTokenRejected`."""
    try:
        header, _ = unverified_parts(token)
    except MalformedJose as e:
        raise IdTokenRejected("malformed", f"not a compact JWT ({e})") from e
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in (rules.algorithms & ID_TOKEN_ALGORITHMS):
        raise IdTokenRejected("algorithm", f"algorithm {alg!r} is not accepted")
    key = _key_for(header, alg, keys)
    try:
        claims = verify_compact(token, key, alg)
    except (JoseError, ValueError) as e:
        raise IdTokenRejected("signature", "the signature does not verify") from e
    if claims.get("iss") != rules.issuer:
        raise IdTokenRejected("issuer", "the token's issuer is not the party's provider")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if rules.audience not in audiences:
        raise IdTokenRejected("audience", "the token was not issued to this system")
    if len(audiences) > 1 and claims.get("azp") != rules.audience:
        raise IdTokenRejected(
            "audience", "a token for several audiences must name this system in azp"
        )
    if "azp" in claims and claims.get("azp") != rules.audience:
        raise IdTokenRejected("audience", "the token's azp is another system")
    exp, iat = _number(claims, "exp"), _number(claims, "iat")
    nbf = _number(claims, "nbf") if "nbf" in claims else None
    if now >= exp + skew_seconds:
        raise IdTokenRejected("expired", "the token has expired")
    if iat > now + skew_seconds:
        raise IdTokenRejected("issued-at", "the token was issued in the future")
    if iat < now - max_age_seconds - skew_seconds:
        raise IdTokenRejected(
            "too-old", f"the token was issued more than {max_age_seconds} seconds ago"
        )
    if nbf is not None and nbf > now + skew_seconds:
        raise IdTokenRejected("not-yet-valid", "the token is not valid yet")
    if "auth_time" in claims:
        auth_time = _number(claims, "auth_time")
        if auth_time < now - max_session_seconds - skew_seconds:
            raise IdTokenRejected(
                "session-too-old",
                f"the user signed in more than {max_session_seconds // 3600} hours ago: "
                "exchange a refreshed ID token after signing in again",
            )
    user = claim_at(claims, rules.user_claim)
    if not isinstance(user, str) or not user:
        raise IdTokenRejected("user", f"the token has no {rules.user_claim} claim")
    return claims, user


def check_id_token(
    token: str,
    keys: Sequence[NamedKey],
    rules: ProviderRules,
    *,
    now: float,
    asserted_role: str | None = None,
    max_age_seconds: int = 600,
    skew_seconds: int = 30,
    max_session_seconds: int = MAX_SESSION_SECONDS,
) -> VerifiedUser:
    """The verified user, or :class:`IdTokenRejected` (:class:`UnknownKey` for an unknown kid)."""
    claims, user = _checked_claims(
        token,
        keys,
        rules,
        now=now,
        max_age_seconds=max_age_seconds,
        skew_seconds=skew_seconds,
        max_session_seconds=max_session_seconds,
    )
    role = choose_role(roles_from_claims(claims, rules.role_rules), asserted_role)
    return VerifiedUser(user_id=user, role=role, issuer=rules.issuer)


def check_subject_token(
    token: str,
    keys: Sequence[NamedKey],
    rules: ProviderRules,
    *,
    now: float,
    max_age_seconds: int = 600,
    skew_seconds: int = 30,
    max_session_seconds: int = MAX_SESSION_SECONDS,
) -> VerifiedPerson:
    """An ID token sent for token exchange: the same checks as :func:`check_id_token`, keeping
    every role the token gives at the requesting party (the user names one per request)."""
    claims, user = _checked_claims(
        token,
        keys,
        rules,
        now=now,
        max_age_seconds=max_age_seconds,
        skew_seconds=skew_seconds,
        max_session_seconds=max_session_seconds,
    )
    roles = roles_from_claims(claims, rules.role_rules)
    name = claims.get("name")
    return VerifiedPerson(
        user_id=user,
        issuer=rules.issuer,
        roles=roles,
        name=name if isinstance(name, str) and name and len(name) <= 200 else None,
        expires_at=_number(claims, "exp"),
        fingerprint=hashlib.sha256(token.rsplit(".", 1)[0].encode()).hexdigest(),
    )


#: The checks every ID token passes, for other kinds of ID token (broker/identity/citizens.py).
checked_claims = _checked_claims
