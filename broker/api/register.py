"""``GET /v1/register``, ``/v1/register/ropa`` and ``/v1/register/{dataset}``: the Information
Asset Register (signed entries that verified) and a party's Record of Processing Activities.

The entries are metadata about datasets, no one's personal data: every officer may read them. The
agreements shown beside an entry, their usage counts and the record of processing are limited, as
``/v1/agreements`` is, to the agreements the reader's party is in (oversight: all, and the record
of any party).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from starlette.concurrency import run_in_threadpool

from broker.agreements.loader import LoadResult, VerifiedAgreement
from broker.agreements.register_view import dataset_view, entry_summary, ropa, ropa_csv
from broker.agreements.status import uk_date
from broker.api.agreements import _visible
from broker.api.deps import Principal, ServicesDep, require_scope
from broker.audit.usage import exchanges_by_agreement
from broker.container import Services
from broker.core.errors import InvalidInput, NotFound, Unavailable

router = APIRouter(prefix="/v1/register", tags=["register"])
Officer = Annotated[Principal, Depends(require_scope("governance", "oversight"))]


def _last(services: Services) -> LoadResult:
    last = services.policy_runtime.last
    if last is None:
        raise Unavailable("agreements are not loaded")
    return last


def _seen(principal: Principal, last: LoadResult) -> list[VerifiedAgreement]:
    return [a for a in last.agreements if _visible(principal, a)]


def _today(services: Services) -> dt.date:
    return uk_date(dt.datetime.fromtimestamp(services.clock(), dt.UTC))


@router.get("", summary="The register: every verified dataset entry")
async def list_register(principal: Officer, services: ServicesDep) -> list[dict[str, Any]]:
    register = _last(services).register
    return [
        entry_summary(register.entries[k], register.digests.get(k))
        for k in sorted(register.entries)
    ]


@router.get("/ropa", summary="A party's Record of Processing Activities (UK GDPR Art. 30)")
async def get_ropa(
    principal: Officer,
    services: ServicesDep,
    party: Annotated[str, Query(max_length=100)],
    format: Annotated[str, Query(max_length=10)] = "json",
) -> Response:
    """One processing activity per agreement flow the party provides or receives under.
    ``format``: ``json`` or ``csv``. A party's officers get their own party's record only."""
    if format not in ("json", "csv"):
        raise InvalidInput("format must be json or csv")
    if "oversight" not in principal.scopes and party != principal.party_id:
        raise NotFound(f"no record of processing of {party!r} that you may see")
    last = _last(services)
    names = {p.id: p.name for p in await run_in_threadpool(services.registry.list_parties)}
    if party not in names:
        raise NotFound(f"no party {party!r}")
    rows = ropa(party, last.register, _seen(principal, last), names)
    if format == "csv":
        return Response(
            ropa_csv(rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="ropa-{party}.csv"'},
        )
    body = {"party": party, "generated_on": _today(services).isoformat(), "activities": rows}
    return Response(json.dumps(body), media_type="application/json")


@router.get("/{dataset}", summary="One dataset: entry, lawful bases, agreements and usage")
async def get_dataset(dataset: str, principal: Officer, services: ServicesDep) -> dict[str, Any]:
    last = _last(services)
    entry = last.register.get(dataset)
    if entry is None:
        raise NotFound(f"no verified register entry {dataset!r}")
    seen = _seen(principal, last)
    usage = await run_in_threadpool(exchanges_by_agreement, services.engine, dataset)
    return dataset_view(entry, last.register.digests.get(dataset), seen, usage, _today(services))
