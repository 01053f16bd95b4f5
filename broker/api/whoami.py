"""``GET /v1/whoami``: the caller's client, party and scopes; with a user-restricted token, the
user it names (issuer, subject, display name, roles); with a citizen token, that it is one (never
the citizen's identifiers)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from broker.api.deps import CurrentPrincipal

router = APIRouter(tags=["authentication"])


class User(BaseModel):
    issuer: str
    subject: str
    name: str | None
    roles: list[str]


class Citizen(BaseModel):
    issuer: str
    subject: str


class WhoAmI(BaseModel):
    client_id: str
    client_name: str
    party_id: str
    scopes: list[str]
    user: User | None = None
    citizen: Citizen | None = None


@router.get(
    "/v1/whoami", summary="Who the access token belongs to", response_model_exclude_none=True
)
async def whoami(principal: CurrentPrincipal) -> WhoAmI:
    return WhoAmI(
        client_id=principal.client_id,
        client_name=principal.client.name,
        party_id=principal.party_id,
        scopes=sorted(principal.scopes),
        user=None
        if (u := principal.user) is None
        else User(issuer=u.issuer, subject=u.subject, name=u.name, roles=list(u.roles)),
        citizen=None
        if (c := principal.citizen) is None
        else Citizen(issuer=c.issuer, subject=c.subject),
    )
