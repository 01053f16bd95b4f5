"""Identity provider registrations, keyed by party and issuer, changed only by an administrator.

One provider may serve several parties (NHS CIS2 is one national issuer for every trust and GP
practice): each party registers it with its own systems' audiences there and its own role map
(broker/identity/roles.py). A party may register several providers (one per issuer).

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

from broker.audit.admin import log_admin_event
from broker.auth.jose import CLIENT_ASSERTION_ALGORITHMS
from broker.core.errors import Conflict, FieldProblem, InvalidInput, NotFound
from broker.core.urls import check_admin_url
from broker.db.tables import parties
from broker.identity.jwks import parse_jwks
from broker.identity.roles import ROLE_FORMATS
from broker.identity.tables import identity_providers
from broker.outbound import OutboundGuard

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
    role_format: str = "claim"
    role_map: Mapping[str, str] = field(default_factory=dict)
    """Provider role value (a group, a CIS2 national RBAC code) -> agreement role."""
    org_code: str | None = None
    """The party's ODS code, else its id (where CIS2 roles must have been granted)."""

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
    role_format: str = "claim",
    role_map: Mapping[str, str] | None = None,
    refused_thumbprints: frozenset[str] = frozenset(),
    guard: OutboundGuard | None = None,
) -> None:
    """Raise InvalidInput naming every bad part of a registration (a JWKS URL is checked
    against the outbound address rule, ``guard``: the default allows nothing inside)."""
    problems: list[FieldProblem] = []
    if not issuer.strip():
        problems.append(FieldProblem("issuer", "must not be empty"))
    if (jwks_url is None) == (jwks is None):
        problems.append(FieldProblem("jwks", "give exactly one of a JWKS URL or an inline JWKS"))
    if jwks_url is not None:
        try:
            check_admin_url(jwks_url, "jwks_url")
            (guard or OutboundGuard()).check_url(jwks_url, "jwks_url")
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
    if role_format not in ROLE_FORMATS:
        problems.append(FieldProblem("role_format", f"one of {', '.join(ROLE_FORMATS)}"))
    role_map = role_map or {}
    if any(
        not isinstance(k, str) or not isinstance(v, str) or not k.strip() or not v.strip()
        for k, v in role_map.items()
    ):
        problems.append(FieldProblem("role_map", "maps non-empty provider values to roles"))
    if role_format == "cis2" and not role_map:
        problems.append(
            FieldProblem("role_map", "a cis2 provider needs a map of role codes to roles")
        )
    if problems:
        raise InvalidInput("identity provider refused", problems)


def _from_row(r: Any, org_code: str | None) -> IdentityProvider:
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
        role_format=r.role_format,
        role_map=dict(r.role_map or {}),
        org_code=org_code,
    )


class IdentityProviderStore:
    def __init__(
        self,
        engine: Engine,
        *,
        refresh_seconds: float = 5.0,
        refused_thumbprints: frozenset[str] = frozenset(),
        clock: Callable[[], float] = time.monotonic,
        guard: OutboundGuard | None = None,
    ) -> None:
        self._engine = engine
        self.refused_thumbprints = refused_thumbprints
        self.guard = guard or OutboundGuard()
        """The outbound address rule JWKS URLs are checked against (nothing inside by default)."""
        self._refresh = refresh_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._snapshot: dict[tuple[str, str], IdentityProvider] | None = None
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
        role_format: str = "claim",
        role_map: Mapping[str, str] | None = None,
    ) -> IdentityProvider:
        """Register ``issuer`` for ``party_id``. Raises InvalidInput, NotFound (party),
        Conflict (the party registered that issuer already)."""
        validate(
            issuer=issuer,
            jwks_url=jwks_url,
            jwks=jwks,
            algorithms=algorithms,
            user_claim=user_claim,
            role_claim=role_claim,
            role_format=role_format,
            role_map=role_map,
            refused_thumbprints=self.refused_thumbprints,
            guard=self.guard,
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
            "role_format": role_format,
            "role_map": dict(role_map or {}),
            "created_ms": now,
            "updated_ms": now,
        }
        with self._engine.begin() as conn:
            if conn.execute(select(parties.c.id).where(parties.c.id == party_id)).first() is None:
                raise NotFound(f"no party {party_id!r}")
            taken = conn.execute(
                select(identity_providers.c.party_id).where(
                    identity_providers.c.party_id == party_id,
                    identity_providers.c.issuer == issuer,
                )
            ).first()
            if taken is not None:
                raise Conflict(
                    f"party {party_id!r} already has an identity provider with issuer {issuer!r}"
                )
            conn.execute(insert(identity_providers).values(**values))
            details = {k: v for k, v in values.items() if k not in ("jwks", "party_id")}
            details["jwks_inline"] = jwks is not None
            log_admin_event(conn, actor=actor, action="idp.add", target=party_id, details=details)
        self.invalidate()
        found = self.get(party_id, issuer)
        assert found is not None
        return found

    def remove(self, party_id: str, *, actor: str, issuer: str | None = None) -> None:
        """Remove the party's registration of ``issuer`` (``None``: its only one). Raises
        NotFound, InvalidInput (no issuer named and the party has several)."""
        with self._engine.begin() as conn:
            issuers = [
                r.issuer
                for r in conn.execute(
                    select(identity_providers.c.issuer).where(
                        identity_providers.c.party_id == party_id
                    )
                )
            ]
            if issuer is None and len(issuers) > 1:
                raise InvalidInput(
                    "name the issuer to remove",
                    [FieldProblem("issuer", f"party {party_id!r} has {len(issuers)} providers")],
                )
            target = issuer if issuer is not None else (issuers[0] if issuers else None)
            if target is None or target not in issuers:
                what = "" if issuer is None else f" with issuer {issuer!r}"
                raise NotFound(f"party {party_id!r} has no identity provider{what}")
            conn.execute(
                delete(identity_providers).where(
                    identity_providers.c.party_id == party_id,
                    identity_providers.c.issuer == target,
                )
            )
            log_admin_event(
                conn,
                actor=actor,
                action="idp.remove",
                target=party_id,
                details={"issuer": target},
            )
        self.invalidate()

    def invalidate(self) -> None:
        with self._lock:
            self._snapshot = None

    def _all(self) -> dict[tuple[str, str], IdentityProvider]:
        with self._lock:
            now = self._clock()
            if self._snapshot is None or now - self._read_at >= self._refresh:
                with self._engine.connect() as conn:
                    rows = conn.execute(
                        select(
                            identity_providers,
                            parties.c.ods_code.label("party_ods_code"),
                        ).join(parties, parties.c.id == identity_providers.c.party_id)
                    ).all()
                self._snapshot = {
                    (r.party_id, r.issuer): _from_row(r, r.party_ods_code or r.party_id)
                    for r in rows
                }
                self._read_at = now
            return self._snapshot

    def get(self, party_id: str, issuer: str) -> IdentityProvider | None:
        """The party's registration of ``issuer``."""
        return self._all().get((party_id, issuer))

    def for_party(self, party_id: str) -> tuple[IdentityProvider, ...]:
        """Every provider the party registered (by issuer)."""
        return tuple(p for (party, _), p in sorted(self._all().items()) if party == party_id)

    def list(self) -> list[IdentityProvider]:
        return [p for _, p in sorted(self._all().items())]
