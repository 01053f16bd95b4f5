"""``/v1/agreements/keys``: a party's agreement-signing keys, registered by the party's officers.

The first key needs two distinct officers each repeating its thumbprint; a new key is a rotation
signed with the current one (``broker.agreements.trust_root``). The routes act only on the
caller's own party, and only with ``governance``: the operator (``admin``) cannot set a key.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from broker.agreements.trust_root import Officer, TrustRoot
from broker.api.deps import Principal, ServicesDep, require_scope
from broker.auth.scopes import Scope
from broker.container import Services

router = APIRouter(prefix="/v1/agreements/keys", tags=["agreements"])
OfficerDep = Annotated[Principal, Depends(require_scope(Scope.GOVERNANCE.value))]


class ApprovalIn(BaseModel):
    jwk: dict[str, Any] = Field(max_length=10)
    thumbprint: str = Field(min_length=1, max_length=100)


class RotationIn(BaseModel):
    jwk: dict[str, Any] = Field(max_length=10)
    jws: str = Field(min_length=1, max_length=4000)


def _root(services: Services) -> TrustRoot:
    return TrustRoot(
        services.engine,
        demo=services.settings.demo,
        now=lambda: dt.datetime.fromtimestamp(services.clock(), dt.UTC),
    )


def _officer(principal: Principal) -> Officer:
    return Officer(principal.client_id, principal.party_id)


@router.get("", summary="Your party's signing keys, the current one, and keys awaiting approval")
def list_keys(principal: OfficerDep, services: ServicesDep) -> dict[str, Any]:
    return _root(services).view(principal.party_id)


@router.post("/approvals", summary="Approve your party's first key, repeating its thumbprint")
def approve_key(body: ApprovalIn, principal: OfficerDep, services: ServicesDep) -> dict[str, Any]:
    return _root(services).approve_first(_officer(principal), body.jwk, body.thumbprint)


@router.post("/rotations", summary="A new key, by a statement signed with the current key")
def rotate_key(body: RotationIn, principal: OfficerDep, services: ServicesDep) -> dict[str, Any]:
    return _root(services).rotate(_officer(principal), body.jwk, body.jws)
