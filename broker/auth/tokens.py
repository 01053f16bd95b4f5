"""Access tokens the broker issues to authenticated clients, and their verification.

A token is a compact JWT signed with the broker's current key (:mod:`broker.auth.keyring`),
header ``alg: ES256`` (so PyJWT, authlib and the like verify it against the JWKS by default):
``iss`` and ``aud`` are the broker's public URL, ``sub`` and ``client_id`` the client, ``party``
its party, ``scope`` the granted scopes, ``exp`` ``token_ttl_seconds`` ahead. Verification checks
signature (by ``kid``, with the one algorithm that key's type signs: ES256, or for an Ed25519
key kept from before ES256, ``EdDSA``/``Ed25519``), issuer, audience and expiry; the caller then
checks that the client is still active, on every request.

A partner system sends the same token with every request until it expires, so a verified token's
claims are kept (a bounded map keyed by the exact token string): a repeat costs a dictionary
lookup, not a signature verification. A kept token is still refused once it expires or once its
signing key leaves the key ring; nothing else about an unchanged string can change.

A user-restricted token (token exchange, broker/api/oauth.py) also carries ``user`` (the ID
token's issuer, subject and display name), ``roles`` (those the provider gave) and
``act: {"sub": client id}`` (RFC 8693 §4.1): the system acting for the user. It is bound to the
client that exchanged it: verification refuses one whose ``act`` names another client.

A citizen token (a citizen's own ID token exchanged by a citizen-facing system,
broker/identity/citizen_exchange.py) carries ``citizen`` instead: the provider's issuer and
subject and the personal identifiers the citizen was verified to hold, with ``act`` the system.
It has no roles: it covers that person's own access report and preview decisions only.
"""

from __future__ import annotations

import secrets
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass

from joserfc import jwt
from joserfc.errors import JoseError, SecurityWarning

from broker.auth.jose import MalformedJose, unverified_parts
from broker.auth.keyring import TOKEN_VERIFY_ALGS, KeyRing, import_token_key, verify_algs
from broker.auth.registry import Client
from broker.core.errors import InvalidToken

MAX_TOKEN_BYTES = 4096
VERIFIED_CACHE_SIZE = 4096


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: str
    token_type: str = "Bearer"  # noqa: S105 - the RFC 6750 token type


@dataclass(frozen=True)
class TokenUser:
    """The verified person a user-restricted token is for."""

    issuer: str
    subject: str
    roles: tuple[str, ...]
    name: str | None = None


@dataclass(frozen=True)
class TokenCitizen:
    """The verified citizen a citizen token is for, and the identifiers it covers."""

    issuer: str
    subject: str
    identifiers: tuple[tuple[str, str], ...]
    """(type, value) pairs, e.g. ``("nhs_number", "9990000018")``: the citizen's own."""

    def __repr__(self) -> str:  # never the identifiers
        return f"TokenCitizen(issuer={self.issuer!r}, identifiers={len(self.identifiers)})"


@dataclass(frozen=True)
class TokenClaims:
    """What a verified access token says. Scopes are re-checked against the registry per request."""

    client_id: str
    party_id: str
    scopes: frozenset[str]
    expires_at: int
    jti: str
    kid: str = ""
    user: TokenUser | None = None
    citizen: TokenCitizen | None = None


class TokenService:
    def __init__(
        self, keyring: KeyRing, issuer: str, ttl_seconds: int, clock: Callable[[], float]
    ) -> None:
        self._keyring = keyring
        self._issuer = issuer
        self._ttl = ttl_seconds
        self._clock = clock
        self._verified: dict[str, TokenClaims] = {}
        self._verified_lock = threading.Lock()

    @property
    def ttl_seconds(self) -> int:
        return self._ttl

    @property
    def issuer(self) -> str:
        return self._issuer

    def issue(
        self,
        client: Client,
        scopes: list[str],
        *,
        user: TokenUser | None = None,
        citizen: TokenCitizen | None = None,
        lifetime_seconds: int | None = None,
    ) -> IssuedToken:
        """An access token for ``client``; with ``user``, a user-restricted one (``act``).
        ``lifetime_seconds`` shortens the configured lifetime, never lengthens it."""
        now = int(self._clock())
        ttl = self._ttl if lifetime_seconds is None else max(1, min(self._ttl, lifetime_seconds))
        signing = self._keyring.current()
        scope = " ".join(scopes)
        claims: dict[str, object] = {
            "iss": self._issuer,
            "aud": self._issuer,
            "sub": client.id,
            "client_id": client.id,
            "party": client.party_id,
            "scope": scope,
            "iat": now,
            "exp": now + ttl,
            "jti": secrets.token_urlsafe(16),
        }
        if user is not None:
            named: dict[str, str] = {"iss": user.issuer, "sub": user.subject}
            if user.name:
                named["name"] = user.name
            claims.update(user=named, roles=list(user.roles), act={"sub": client.id})
        elif citizen is not None:
            ids = [{"type": t, "value": v} for t, v in citizen.identifiers]
            person = {"iss": citizen.issuer, "sub": citizen.subject, "identifiers": ids}
            claims.update(citizen=person, act={"sub": client.id})
        header = {"alg": signing.algorithm, "typ": "at+jwt", "kid": signing.kid}
        key = import_token_key(signing.pem)
        with warnings.catch_warnings():
            # An Ed25519 key signs as "EdDSA", which RFC 9864 deprecates; clients know no other.
            warnings.filterwarnings("ignore", category=SecurityWarning)
            token = jwt.encode(header, claims, key, algorithms=[signing.algorithm])
        return IssuedToken(token, ttl, scope)

    def verify(self, token: str) -> TokenClaims:
        """Check an access token. Raises InvalidToken (a 401) for any fault."""
        known = self._verified.get(token)
        if known is not None:
            if known.expires_at <= self._clock():
                raise InvalidToken("the access token has expired")
            if self._keyring.verification_key(known.kid) is None:
                raise InvalidToken("the access token's signing key is unknown or retired")
            return known
        claims = self._verify(token)
        with self._verified_lock:
            if len(self._verified) >= VERIFIED_CACHE_SIZE:
                self._verified.clear()  # rare: many live tokens; verifying again is correct
            self._verified[token] = claims
        return claims

    def _verify(self, token: str) -> TokenClaims:
        if len(token) > MAX_TOKEN_BYTES:
            raise InvalidToken("the access token is too large")
        try:
            header, _ = unverified_parts(token)
        except MalformedJose as e:
            raise InvalidToken("the access token is malformed") from e
        alg = header.get("alg")
        if alg not in TOKEN_VERIFY_ALGS or header.get("typ") != "at+jwt":
            raise InvalidToken("the access token was not issued by this broker")
        kid = header.get("kid")
        key = self._keyring.verification_key(kid) if isinstance(kid, str) else None
        if key is None:
            raise InvalidToken("the access token's signing key is unknown or retired")
        if alg not in verify_algs(key):
            raise InvalidToken("the access token was not issued by this broker")
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", category=SecurityWarning)
                claims = jwt.decode(token, key, algorithms=[str(alg)]).claims
        except (JoseError, ValueError) as e:
            raise InvalidToken("the access token's signature does not verify") from e
        if claims.get("iss") != self._issuer or claims.get("aud") != self._issuer:
            raise InvalidToken("the access token is for another service")
        exp = claims.get("exp")
        if not isinstance(exp, int) or exp <= self._clock():
            raise InvalidToken("the access token has expired")
        client_id, party, scope = claims.get("client_id"), claims.get("party"), claims.get("scope")
        if not (isinstance(client_id, str) and isinstance(party, str) and isinstance(scope, str)):
            raise InvalidToken("the access token is malformed")
        citizen = _citizen(claims, client_id)
        user = None if citizen is not None else _user(claims, client_id)
        return TokenClaims(
            client_id,
            party,
            frozenset(scope.split()),
            exp,
            str(claims.get("jti")),
            str(kid),
            user,
            citizen,
        )


def _user(claims: dict[str, object], client_id: str) -> TokenUser | None:
    """The user of a user-restricted token (None for an application token). The token is the
    client's own: ``act`` must name the client the token was issued to."""
    if "act" not in claims and "user" not in claims and "roles" not in claims:
        return None
    act, user, roles = claims.get("act"), claims.get("user"), claims.get("roles")
    if not isinstance(act, dict) or act.get("sub") != client_id:
        raise InvalidToken("the user-restricted token is bound to another client")
    if not (
        isinstance(user, dict)
        and isinstance(user.get("iss"), str)
        and isinstance(user.get("sub"), str)
        and isinstance(roles, list)
        and roles
        and all(isinstance(r, str) for r in roles)
    ):
        raise InvalidToken("the user-restricted token is malformed")
    name = user.get("name")
    return TokenUser(
        user["iss"], user["sub"], tuple(roles), name if isinstance(name, str) else None
    )


def _citizen(claims: dict[str, object], client_id: str) -> TokenCitizen | None:
    """The citizen of a citizen token (None for any other token), bound to its client."""
    if "citizen" not in claims:
        return None
    act, person = claims.get("act"), claims.get("citizen")
    if not isinstance(act, dict) or act.get("sub") != client_id:
        raise InvalidToken("the citizen token is bound to another client")
    if "user" in claims or "roles" in claims or not isinstance(person, dict):
        raise InvalidToken("the citizen token is malformed")
    issuer, subject, ids = person.get("iss"), person.get("sub"), person.get("identifiers")
    if not (isinstance(issuer, str) and isinstance(subject, str) and isinstance(ids, list)):
        raise InvalidToken("the citizen token is malformed")
    pairs: list[tuple[str, str]] = []
    for item in ids:
        if not (
            isinstance(item, dict)
            and isinstance(item.get("type"), str)
            and isinstance(item.get("value"), str)
        ):
            raise InvalidToken("the citizen token is malformed")
        pairs.append((item["type"], item["value"]))
    if not pairs:
        raise InvalidToken("the citizen token names no identifier")
    return TokenCitizen(issuer, subject, tuple(pairs))
