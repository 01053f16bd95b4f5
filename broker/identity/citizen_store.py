"""Citizen identity providers (several per party) and the links of citizens to identifiers.

Providers are registered by an administrator (``broker idp citizen ...``); every change is an
``admin_events`` row in the same transaction. A link is recorded by the first token exchange of
a citizen's ID token (broker/identity/citizen_exchange.py): the provider's issuer and subject,
the identifier's keyed pseudonym (never the identifier), the claim and assurance that proved it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError

from broker.audit.admin import log_admin_event
from broker.core.errors import Conflict, FieldProblem, InvalidInput, NotFound
from broker.core.pseudonym import Pseudonym
from broker.db.tables import parties
from broker.identity.citizens import CITIZEN_IDENTIFIER_TYPES, CitizenRules
from broker.identity.store import DEFAULT_ALGORITHMS, validate
from broker.identity.tables import citizen_identity_providers, citizen_links
from broker.outbound import OutboundGuard


@dataclass(frozen=True)
class CitizenProvider:
    party_id: str
    issuer: str
    name: str
    jwks_url: str | None
    jwks: Mapping[str, Any] | None = field(repr=False)
    audiences: Mapping[str, str]
    """Broker client id -> that system's client id at the provider (the ID token's ``aud``)."""
    algorithms: tuple[str, ...]
    rules: CitizenRules
    updated_ms: int

    def audience_for(self, client_id: str) -> str:
        return self.audiences.get(client_id, client_id)


def _from_row(r: Any) -> CitizenProvider:
    return CitizenProvider(
        party_id=r.party_id,
        issuer=r.issuer,
        name=r.name,
        jwks_url=r.jwks_url,
        jwks=r.jwks,
        audiences=dict(r.audiences),
        algorithms=tuple(r.algorithms),
        rules=CitizenRules(
            identifier_claim=r.identifier_claim,
            identifier_type=r.identifier_type,
            assurance_claim=r.assurance_claim,
            assurance_values=frozenset(r.assurance_values),
        ),
        updated_ms=int(r.updated_ms),
    )


def _check_rules(rules: CitizenRules) -> list[FieldProblem]:
    problems = []
    if rules.identifier_type not in CITIZEN_IDENTIFIER_TYPES:
        allowed = " or ".join(sorted(CITIZEN_IDENTIFIER_TYPES))
        problems.append(FieldProblem("identifier_type", f"must be {allowed} (one person)"))
    for name, claim in (
        ("identifier_claim", rules.identifier_claim),
        ("assurance_claim", rules.assurance_claim),
    ):
        if not claim or len(claim) > 100:
            problems.append(FieldProblem(name, "must be a claim name"))
    if not rules.assurance_values or not all(v for v in rules.assurance_values):
        problems.append(FieldProblem("assurance_values", "name at least one accepted value"))
    return problems


class CitizenProviderStore:
    def __init__(
        self,
        engine: Engine,
        *,
        refused_thumbprints: frozenset[str] = frozenset(),
        guard: OutboundGuard | None = None,
    ) -> None:
        self._engine = engine
        self.refused_thumbprints = refused_thumbprints
        self.guard = guard or OutboundGuard()
        """The outbound address rule JWKS URLs are checked against (nothing inside by default)."""

    def add(
        self,
        party_id: str,
        issuer: str,
        *,
        actor: str,
        name: str,
        rules: CitizenRules,
        jwks_url: str | None = None,
        jwks: Mapping[str, Any] | None = None,
        audiences: Mapping[str, str] | None = None,
        algorithms: Sequence[str] = DEFAULT_ALGORITHMS,
    ) -> CitizenProvider:
        """Register a citizen provider for ``party_id``. Raises InvalidInput, NotFound (party),
        Conflict (the party has this issuer already)."""
        problems = _check_rules(rules)
        if not name.strip():
            problems.append(FieldProblem("name", "must not be empty"))
        try:
            validate(
                issuer=issuer,
                jwks_url=jwks_url,
                jwks=jwks,
                algorithms=algorithms,
                user_claim="sub",
                role_claim=rules.identifier_claim,
                refused_thumbprints=self.refused_thumbprints,
                guard=self.guard,
            )
        except InvalidInput as e:
            problems.extend(e.problems)
        if problems:
            raise InvalidInput("citizen identity provider refused", problems)
        now = int(time.time() * 1000)
        values = {
            "party_id": party_id,
            "issuer": issuer,
            "name": name.strip(),
            "jwks_url": jwks_url,
            "jwks": None if jwks is None else dict(jwks),
            "audiences": dict(audiences or {}),
            "algorithms": list(algorithms),
            "identifier_claim": rules.identifier_claim,
            "identifier_type": rules.identifier_type,
            "assurance_claim": rules.assurance_claim,
            "assurance_values": sorted(rules.assurance_values),
            "created_ms": now,
            "updated_ms": now,
        }
        c = citizen_identity_providers.c
        with self._engine.begin() as conn:
            if conn.execute(select(parties.c.id).where(parties.c.id == party_id)).first() is None:
                raise NotFound(f"no party {party_id!r}")
            taken = conn.execute(
                select(c.issuer).where(c.party_id == party_id, c.issuer == issuer)
            ).first()
            if taken is not None:
                raise Conflict(f"party {party_id!r} already has the citizen provider {issuer}")
            conn.execute(insert(citizen_identity_providers).values(**values))
            details = {k: v for k, v in values.items() if k not in ("jwks", "party_id")}
            details["jwks_inline"] = jwks is not None
            log_admin_event(
                conn, actor=actor, action="citizen-idp.add", target=party_id, details=details
            )
        found = self.get(party_id, issuer)
        assert found is not None
        return found

    def remove(self, party_id: str, issuer: str, *, actor: str) -> None:
        """Raises NotFound."""
        c = citizen_identity_providers.c
        with self._engine.begin() as conn:
            result = conn.execute(
                delete(citizen_identity_providers).where(c.party_id == party_id, c.issuer == issuer)
            )
            if result.rowcount == 0:
                raise NotFound(f"party {party_id!r} has no citizen provider {issuer}")
            log_admin_event(
                conn,
                actor=actor,
                action="citizen-idp.remove",
                target=party_id,
                details={"issuer": issuer},
            )

    def get(self, party_id: str, issuer: str) -> CitizenProvider | None:
        c = citizen_identity_providers.c
        with self._engine.connect() as conn:
            row = conn.execute(
                select(citizen_identity_providers).where(c.party_id == party_id, c.issuer == issuer)
            ).first()
        return None if row is None else _from_row(row)

    def list(self, party_id: str | None = None) -> list[CitizenProvider]:
        query = select(citizen_identity_providers)
        if party_id is not None:
            query = query.where(citizen_identity_providers.c.party_id == party_id)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return sorted((_from_row(r) for r in rows), key=lambda p: (p.party_id, p.issuer))


@dataclass(frozen=True)
class CitizenLink:
    issuer: str
    subject: str
    identifier_type: str
    identifier_pseudonym: str
    key_version: str
    verified_by: str
    assurance: str
    created_ms: int


class CitizenLinkConflict(Conflict):
    title = "Citizen identity linked to another person"


class CitizenLinkStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def link(
        self,
        *,
        issuer: str,
        subject: str,
        identifier: Pseudonym,
        all_pseudonyms: Sequence[str],
        identifier_type: str,
        verified_by: str,
        assurance: str,
        party_id: str,
        client_id: str,
        now_ms: int,
    ) -> tuple[CitizenLink, bool]:
        """The link of the citizen's identity to ``identifier`` and whether it was recorded now
        (the first exchange). ``all_pseudonyms`` are the identifier's pseudonyms under every key
        version. Raises :class:`CitizenLinkConflict` when the identity is linked already to
        another identifier of this type."""
        c = citizen_links.c
        where = (c.issuer == issuer, c.subject == subject, c.identifier_type == identifier_type)
        values = {
            "issuer": issuer,
            "subject": subject,
            "identifier_type": identifier_type,
            "identifier_pseudonym": identifier.value,
            "key_version": identifier.key_version,
            "party_id": party_id,
            "client_id": client_id,
            "verified_by": verified_by,
            "assurance": assurance,
            "created_ms": now_ms,
        }
        created = False
        try:
            with self._engine.begin() as conn:
                row = conn.execute(select(citizen_links).where(*where)).first()
                if row is None:
                    conn.execute(insert(citizen_links).values(**values))
                    log_admin_event(
                        conn,
                        actor=client_id,
                        action="citizen.link",
                        target=f"{issuer} {subject}",
                        details={
                            k: v
                            for k, v in values.items()
                            if k not in ("issuer", "subject", "created_ms")
                        },
                    )
                    created = True
        except IntegrityError:  # linked meanwhile by another process: read it below
            row = None
        if row is None and not created:
            with self._engine.connect() as conn:
                row = conn.execute(select(citizen_links).where(*where)).first()
        if row is not None:
            if row.identifier_pseudonym not in all_pseudonyms:
                raise CitizenLinkConflict(
                    "this identity is linked to another "
                    f"{identifier_type}: the council must review the link"
                )
            values = {k: getattr(row, k) for k in values}
        return (
            CitizenLink(
                issuer=str(values["issuer"]),
                subject=str(values["subject"]),
                identifier_type=str(values["identifier_type"]),
                identifier_pseudonym=str(values["identifier_pseudonym"]),
                key_version=str(values["key_version"]),
                verified_by=str(values["verified_by"]),
                assurance=str(values["assurance"]),
                created_ms=int(str(values["created_ms"])),
            ),
            created,
        )
