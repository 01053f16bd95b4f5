"""``GET /v1/whoami``: the caller's client, party and scopes."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from broker.api.deps import CurrentPrincipal

router = APIRouter(tags=["authentication"])


class WhoAmI(BaseModel):
    client_id: str
    client_name: str
    party_id: str
    scopes: list[str]


@router.get("/v1/whoami", summary="Who the access token belongs to")
async def whoami(principal: CurrentPrincipal) -> WhoAmI:
    return WhoAmI(
        client_id=principal.client_id,
        client_name=principal.client.name,
        party_id=principal.party_id,
        scopes=sorted(principal.scopes),
    )
