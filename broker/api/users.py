"""People under oversight: a party's governance officers list every exchange one verified user of
their party made, and suspend or reinstate that user.

A user is the identity provider's issuer and their subject there, never a display name. A
``governance`` client sees and suspends only its own party's users (another party: 403);
``oversight`` may list any party's (``party``), but suspending is the party's own act. Every
listing is an ``audit-read`` entry; every suspension and reinstatement an admin event.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from broker.api.deps import Principal, ServicesDep, require_scope
from broker.audit.search import audit_read_entry
from broker.audit.users import UserRef, user_exchanges
from broker.auth.registry import ID_PATTERN
from broker.core.errors import Forbidden
from broker.identity.suspensions import MAX_REASON_CHARS

router = APIRouter(prefix="/v1/users", tags=["users"])
Officer = Annotated[Principal, Depends(require_scope("governance", "oversight"))]
Governance = Annotated[Principal, Depends(require_scope("governance"))]
PartyQuery = Annotated[
    str | None,
    Query(min_length=2, max_length=100, pattern=ID_PATTERN, description="oversight: any party"),
]


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    party: str | None = Field(default=None, description="the caller's own party (the default)")
    issuer: str = Field(min_length=1, max_length=500, description="the identity provider")
    subject: str = Field(min_length=1, max_length=255, description="the user's subject there")
    reason: str = Field(min_length=1, max_length=MAX_REASON_CHARS)


def party_of(principal: Principal, party: str | None) -> str:
    """The party whose users ``principal`` asks about. Raises Forbidden for another party's
    users unless the caller has the ``oversight`` scope."""
    if party is None or party == principal.party_id:
        return principal.party_id
    if "oversight" in principal.scopes:
        return party
    raise Forbidden(
        f"a governance client sees only the users of its own party ({principal.party_id})"
    )


def _user_digest(subject: str) -> str:
    """What an audit read records of the user asked about (the subject is not kept in clear in
    the unredactable read entry)."""
    return hashlib.sha256(subject.encode()).hexdigest()


@router.get("/exchanges", summary="Every exchange one verified user of a party made")
async def exchanges_of_user(
    principal: Officer,
    services: ServicesDep,
    issuer: Annotated[str, Query(min_length=1, max_length=500)],
    subject: Annotated[str, Query(min_length=1, max_length=255)],
    party: PartyQuery = None,
    cursor: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, object]:
    user = UserRef(party_of(principal, party), issuer, subject)
    suspension = services.suspensions.get(user.party_id, issuer, subject)

    def run() -> dict[str, object]:
        services.audit.append(
            audit_read_entry(
                client_id=principal.client_id,
                party_id=principal.party_id,
                resource="users.exchanges",
                query={
                    "party": user.party_id,
                    "user_issuer": issuer,
                    "user_sha256": _user_digest(subject),
                    **({"cursor": cursor} if cursor else {}),
                },
            )
        )
        page = user_exchanges(services.audit.engine, user, cursor=cursor, limit=limit)
        return {
            "party_id": user.party_id,
            "issuer": issuer,
            "subject": subject,
            "suspended": suspension is not None,
            "items": page.items,
            "next_cursor": page.next_cursor,
        }

    return await run_in_threadpool(run)


@router.get("/suspensions", summary="The suspended users of a party")
async def list_suspensions(
    principal: Officer, services: ServicesDep, party: PartyQuery = None
) -> dict[str, object]:
    party_id = party_of(principal, party)
    found = await run_in_threadpool(services.suspensions.list, party_id)
    return {"party_id": party_id, "items": [s.to_json() for s in found]}


def own_party(principal: Principal, party: str | None) -> str:
    """Suspending is the act of the user's own party. Raises Forbidden for another party."""
    if party is not None and party != principal.party_id:
        raise Forbidden(f"only a governance client of {party} may suspend or reinstate its users")
    return principal.party_id


@router.post("/suspensions", status_code=201, summary="Suspend a verified user of your party")
async def suspend(body: UserIn, principal: Governance, services: ServicesDep) -> dict[str, object]:
    """The user gets no user-restricted token and no answer, on every instance within 2 s."""

    def run() -> dict[str, object]:
        return services.suspensions.suspend(
            own_party(principal, body.party),
            body.issuer,
            body.subject,
            reason=body.reason,
            actor=f"client:{principal.client_id}",
        ).to_json()

    return await run_in_threadpool(run)


@router.post("/suspensions/reinstate", summary="Reinstate a suspended user of your party")
async def reinstate(
    body: UserIn, principal: Governance, services: ServicesDep
) -> dict[str, object]:
    party_id = own_party(principal, body.party)
    await run_in_threadpool(
        lambda: services.suspensions.reinstate(
            party_id,
            body.issuer,
            body.subject,
            reason=body.reason,
            actor=f"client:{principal.client_id}",
        )
    )
    return {
        "party_id": party_id,
        "issuer": body.issuer,
        "subject": body.subject,
        "suspended": False,
    }
