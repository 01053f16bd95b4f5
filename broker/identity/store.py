"""Identity provider registrations (one per party), changed only by an administrator.

Every change is an ``admin_events`` row in the same transaction. Reads go through a snapshot
refreshed every few seconds, so the exchange path does not query the table on every request
(a change made by the CLI in another process takes effect within ``refresh_seconds``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, delete, insert, select

from broker.auth.jose import CLIENT_ASSERTION_ALGORITHMS
from broker.core.errors import Conflict, FieldProblem, InvalidInput, NotFound
from broker.core.urls import check_admin_url
from broker.db.tables import log_admin_event, parties
from broker.identity.jwks import parse_jwks
from broker.identity.tables import identity_providers

DEFAULT_ALGORITHMS: tuple[str, ...] = ("RS256", "PS256", "ES256", "EdDSA", "Ed25519")


@dataclass(frozen=True)
class IdentityProvider:
    party_id: str
    issuer: str
    jwks_url: str | None
    jwks: Mapping[str, Any] | None = field(repr=False)
    audiences: Mapping[str, str]
    """Broker client id -> that system's client id at the provider (the ID token's ``aud``);
    a client not listed is expected to use its broker client id."""
    user_claim: str
    role_claim: str
    algorithms: tuple[str, ...]
    required: bool
    updated_ms: int

    def audience_for(self, client_id: str) -> str:
        return self.audiences.get(client_id, client_id)


def validate(
    *,
    issuer: str,
    jwks_url: str | None,
    jwks: Mapping[str, Any] | None,
    algorithms: Sequence[str],
    user_claim: str,
    role_claim: str,
    refused_thumbprints: frozenset[str] = frozenset(),
) -> None:
    """Raise InvalidInput naming every bad part of a registration."""
    problems: list[FieldProblem] = []
    if not issuer.strip():
        problems.append(FieldProblem("issuer", "must not be empty"))
    if (jwks_url is None) == (jwks is None):
        problems.append(FieldProblem("jwks", "give exactly one of a JWKS URL or an inline JWKS"))
    if jwks_url is not None:
        try:
            check_admin_url(jwks_url, "jwks_url")
        except InvalidInput as e:
            problems.extend(e.problems)
    if jwks is not None:
        try:
            if not parse_jwks(jwks, refused_thumbprints):
                problems.append(
                    FieldProblem(
                        "jwks", "holds no usable public signing key (demo keys only in --demo)"
                    )
                )
        except ValueError as e:
            problems.append(FieldProblem("jwks", str(e)))
    bad = sorted(set(algorithms) - CLIENT_ASSERTION_ALGORITHMS)
    if bad or not algorithms:
        allowed = ", ".join(sorted(CLIENT_ASSERTION_ALGORITHMS))
        problems.append(FieldProblem("algorithms", f"only asymmetric algorithms ({allowed})"))
    for name, claim in (("user_claim", user_claim), ("role_claim", role_claim)):
        if not claim or any(not part for part in claim.split(".")):
            problems.append(FieldProblem(name, "must be a claim name or a dotted path"))
    if problems:
        raise InvalidInput("identity provider refused", problems)


def _from_row(r: Any) -> IdentityProvider:
    return IdentityProvider(
        party_id=r.party_id,
        issuer=r.issuer,
        jwks_url=r.jwks_url,
        jwks=r.jwks,
        audiences=dict(r.audiences),
        user_claim=r.user_claim,
        role_claim=r.role_claim,
        algorithms=tuple(r.algorithms),
        required=bool(r.required),
        updated_ms=int(r.updated_ms),
    )


class IdentityProviderStore:
    def __init__(
        self,
        engine: Engine,
        *,
        refresh_seconds: float = 5.0,
        refused_thumbprints: frozenset[str] = frozenset(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self.refused_thumbprints = refused_thumbprints
        self._refresh = refresh_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._snapshot: dict[str, IdentityProvider] | None = None
        self._read_at = 0.0

    def add(
        self,
        party_id: str,
        issuer: str,
        *,
        actor: str,
        jwks_url: str | None = None,
        jwks: Mapping[str, Any] | None = None,
        audiences: Mapping[str, str] | None = None,
        user_claim: str = "sub",
        role_claim: str = "role",
        algorithms: Sequence[str] = DEFAULT_ALGORITHMS,
        required: bool = False,
    ) -> IdentityProvider:
        """Register ``party_id``'s provider. Raises InvalidInput, NotFound (party), Conflict."""
        validate(
            issuer=issuer,
            jwks_url=jwks_url,
            jwks=jwks,
            algorithms=algorithms,
            user_claim=user_claim,
            role_claim=role_claim,
            refused_thumbprints=self.refused_thumbprints,
        )
        now = int(time.time() * 1000)
        values = {
            "party_id": party_id,
            "issuer": issuer,
            "jwks_url": jwks_url,
            "jwks": None if jwks is None else dict(jwks),
            "audiences": dict(audiences or {}),
            "user_claim": user_claim,
            "role_claim": role_claim,
            "algorithms": list(algorithms),
            "required": required,
            "created_ms": now,
            "updated_ms": now,
        }
        with self._engine.begin() as conn:
            if conn.execute(select(parties.c.id).where(parties.c.id == party_id)).first() is None:
                raise NotFound(f"no party {party_id!r}")
            taken = conn.execute(
                select(identity_providers.c.party_id).where(
                    identity_providers.c.party_id == party_id
                )
            ).first()
            if taken is not None:
                raise Conflict(f"party {party_id!r} already has an identity provider")
            conn.execute(insert(identity_providers).values(**values))
            details = {k: v for k, v in values.items() if k not in ("jwks", "party_id")}
            details["jwks_inline"] = jwks is not None
            log_admin_event(conn, actor=actor, action="idp.add", target=party_id, details=details)
        self.invalidate()
        found = self.get(party_id)
        assert found is not None
        return found

    def remove(self, party_id: str, *, actor: str) -> None:
        """Raises NotFound."""
        with self._engine.begin() as conn:
            result = conn.execute(
                delete(identity_providers).where(identity_providers.c.party_id == party_id)
            )
            if result.rowcount == 0:
                raise NotFound(f"party {party_id!r} has no identity provider")
            log_admin_event(conn, actor=actor, action="idp.remove", target=party_id, details={})
        self.invalidate()

    def invalidate(self) -> None:
        with self._lock:
            self._snapshot = None

    def _all(self) -> dict[str, IdentityProvider]:
        with self._lock:
            now = self._clock()
            if self._snapshot is None or now - self._read_at >= self._refresh:
                with self._engine.connect() as conn:
                    rows = conn.execute(select(identity_providers)).all()
                self._snapshot = {r.party_id: _from_row(r) for r in rows}
                self._read_at = now
            return self._snapshot

    def get(self, party_id: str) -> IdentityProvider | None:
        return self._all().get(party_id)

    def list(self) -> list[IdentityProvider]:
        return sorted(self._all().values(), key=lambda p: p.party_id)
