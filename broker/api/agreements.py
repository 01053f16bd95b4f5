"""``GET /v1/agreements`` and ``GET /v1/agreements/{id}``: agreements with computed status.

A party's governance officers see the agreements their party is in; oversight sees all.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from broker.agreements.loader import VerifiedAgreement
from broker.api.deps import Principal, ServicesDep, require_scope
from broker.core.errors import NotFound, Unavailable

router = APIRouter(prefix="/v1/agreements", tags=["agreements"])
Officer = Annotated[Principal, Depends(require_scope("governance", "oversight"))]


def _visible(principal: Principal, agreement: VerifiedAgreement) -> bool:
    if "oversight" in principal.scopes:
        return True
    a = agreement.agreement
    return a is not None and any(p.id == principal.party_id for p in a.parties)


def _loaded(services: ServicesDep) -> list[VerifiedAgreement]:
    last = services.policy_runtime.last
    if last is None:
        raise Unavailable("agreements are not loaded")
    return list(last.agreements)


@router.get("", summary="Agreements with status, expiry and review flag")
async def list_agreements(principal: Officer, services: ServicesDep) -> list[dict[str, Any]]:
    return [a.summary() for a in _loaded(services) if _visible(principal, a)]


@router.get("/{agreement_id}", summary="One agreement: status, parties, flows, signatures")
async def get_agreement(
    agreement_id: str, principal: Officer, services: ServicesDep
) -> list[dict[str, Any]]:
    """Every version on file of that agreement (newest first), with its full content."""
    found = [
        a
        for a in _loaded(services)
        if a.status.agreement_id == agreement_id and _visible(principal, a)
    ]
    if not found:
        raise NotFound(f"no agreement {agreement_id!r} that you may see")
    found.sort(key=lambda a: a.status.version or 0, reverse=True)
    return [
        {**a.summary(), "content": a.agreement.content() if a.agreement else None} for a in found
    ]
