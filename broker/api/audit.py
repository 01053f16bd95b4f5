"""The audit log over HTTP: checkpoints and proofs for every party, searches for officers, and an
agreement's usage by party and month for its co-signatories.

Every read of audit data (search, one entry) is itself appended to the log, with subject
identifiers replaced by their pseudonyms, before the answer is sent.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from starlette.concurrency import run_in_threadpool

from broker.agreements.visibility import party_scope
from broker.api.deps import CurrentPrincipal, Principal, ServicesDep, require_scope
from broker.audit.search import AuditScope, SearchFilters, audit_read_entry, get_exchange, search
from broker.audit.usage import MAX_MONTHS, usage_by_party
from broker.container import Services
from broker.core.errors import FieldProblem, InvalidInput, NotFound
from broker.core.identifiers import parse_subject

router = APIRouter(tags=["audit"])
Officer = Annotated[Principal, Depends(require_scope("governance", "oversight"))]


def scope_for(principal: Principal, services: Services) -> AuditScope | None:
    """Oversight sees everything; a party's clients see the entries their party made and those
    about a dataset it provides (so a provider sees who asked for its data), never another
    party's lookups under an agreement they share."""
    if "oversight" in principal.scopes:
        return None
    last = services.policy_runtime.last
    if last is None:
        return party_scope(principal.party_id, ())
    return party_scope(principal.party_id, last.agreements, last.register)


def _ms(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as e:
        raise InvalidInput(
            f"{name} is not an ISO 8601 time", [FieldProblem(name, "expected ISO 8601")]
        ) from e
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return int(parsed.timestamp() * 1000)


def _record_read(
    services: Services, principal: Principal, resource: str, query: dict[str, object]
) -> None:
    services.audit.append(
        audit_read_entry(
            client_id=principal.client_id,
            party_id=principal.party_id,
            resource=resource,
            query=query,
        )
    )


@router.get("/v1/audit/checkpoint", summary="The latest signed tree head (C2SP signed note)")
async def checkpoint(_: CurrentPrincipal, services: ServicesDep) -> dict[str, Any]:
    latest = await run_in_threadpool(services.audit.latest_checkpoint)
    return dict(latest.to_json())


@router.get("/v1/audit/proof/inclusion", summary="RFC 9162 inclusion proof of one exchange")
async def inclusion_proof(
    principal: CurrentPrincipal,
    services: ServicesDep,
    exchange_id: Annotated[str, Query(max_length=64)],
    tree_size: Annotated[int | None, Query(ge=1)] = None,
) -> dict[str, object]:
    """Of an exchange the caller's party asked for or provided (oversight: any); another
    party's exchange is "not in the log" for it, as an unknown id is."""

    def run() -> dict[str, object]:
        # Raises AuditNotFoundError (404) out of scope: the leaf's place is not disclosed.
        get_exchange(services.audit.engine, exchange_id, scope=scope_for(principal, services))
        return services.audit.inclusion_proof(exchange_id=exchange_id, tree_size=tree_size)

    return await run_in_threadpool(run)


@router.get("/v1/audit/proof/consistency", summary="RFC 9162 consistency proof between sizes")
async def consistency_proof(
    _: CurrentPrincipal,
    services: ServicesDep,
    first: Annotated[int, Query(ge=0)],
    second: Annotated[int, Query(ge=0)],
) -> dict[str, object]:
    return await run_in_threadpool(services.audit.consistency_proof, first, second)


@router.get("/v1/exchanges", summary="Search the audit log (never the records, only digests)")
async def search_exchanges(
    principal: Officer,
    services: ServicesDep,
    agreement: Annotated[str | None, Query(max_length=100)] = None,
    party: Annotated[str | None, Query(max_length=100)] = None,
    client: Annotated[str | None, Query(max_length=100)] = None,
    dataset: Annotated[str | None, Query(max_length=100)] = None,
    decision: Annotated[str | None, Query(pattern="^(allow|deny|held|error|not_found)$")] = None,
    kind: Annotated[
        str | None, Query(pattern="^(exchange|admin|simulation|audit-read|redaction)$")
    ] = None,
    time_from: Annotated[str | None, Query(alias="from", max_length=40)] = None,
    time_to: Annotated[str | None, Query(alias="to", max_length=40)] = None,
    break_glass: bool = False,
    subject_type: Annotated[str | None, Query(max_length=40)] = None,
    subject_value: Annotated[str | None, Query(max_length=100)] = None,
    cursor: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, object]:
    pseudonyms: tuple[str, ...] = ()
    if (subject_type is None) != (subject_value is None):
        raise InvalidInput(
            "give both subject_type and subject_value",
            [FieldProblem("subject_value" if subject_value is None else "subject_type", "missing")],
        )
    if subject_type is not None and subject_value is not None:
        subject = parse_subject(subject_type, subject_value)
        pseudonyms = tuple(
            p.value for p in services.pseudonyms.all_pseudonyms(subject.type, subject.value)
        )
    filters = SearchFilters(
        agreement_id=agreement,
        party_id=party,
        client_id=client,
        dataset=dataset,
        decision=decision,
        kind=kind,
        time_from_ms=_ms(time_from, "from"),
        time_to_ms=_ms(time_to, "to"),
        break_glass_only=break_glass,
        subject_pseudonyms=pseudonyms,
    )
    query: dict[str, object] = {
        k: v
        for k, v in {
            "agreement": agreement,
            "party": party,
            "client": client,
            "dataset": dataset,
            "decision": decision,
            "kind": kind,
            "from": time_from,
            "to": time_to,
            "break_glass": break_glass or None,
            "subject_pseudonyms": list(pseudonyms) or None,
            "cursor": cursor,
        }.items()
        if v is not None
    }

    def run() -> dict[str, object]:
        _record_read(services, principal, "exchanges.search", query)
        page = search(
            services.audit.engine,
            filters,
            cursor=cursor,
            limit=limit,
            scope=scope_for(principal, services),
        )
        return {"items": page.items, "next_cursor": page.next_cursor}

    return await run_in_threadpool(run)


@router.get("/v1/exchanges/{exchange_id}", summary="One audit entry (never the record itself)")
async def get_one(
    exchange_id: str,
    principal: Officer,
    services: ServicesDep,
) -> dict[str, object]:
    def run() -> dict[str, object]:
        _record_read(services, principal, "exchanges.get", {"exchange_id": exchange_id})
        return get_exchange(
            services.audit.engine, exchange_id, scope=scope_for(principal, services)
        )

    return await run_in_threadpool(run)


def _month(value: str | None, name: str, default: dt.date) -> dt.date:
    if value is None:
        return default.replace(day=1)
    try:
        year, month = value.split("-")
        return dt.date(int(year), int(month), 1)
    except ValueError as e:
        raise InvalidInput(
            f"{name} is a month written YYYY-MM", [FieldProblem(name, "expected YYYY-MM")]
        ) from e


@router.get(
    "/v1/agreements/{agreement_id}/usage",
    summary="An agreement's usage: counts by party and month (never individual exchanges)",
)
async def agreement_usage(
    agreement_id: Annotated[str, Path(max_length=200)],
    principal: Officer,
    services: ServicesDep,
    start: Annotated[str | None, Query(alias="from", max_length=7)] = None,
    end: Annotated[str | None, Query(alias="to", max_length=7)] = None,
) -> dict[str, object]:
    """What a co-signatory sees of the other parties' exchanges under an agreement it is in:
    how many, by party and month. Oversight: any agreement."""
    last_month = _month(end, "to", dt.datetime.now(dt.UTC).date())
    first = _month(start, "from", dt.date(last_month.year - 1, last_month.month, 1))
    if first > last_month:
        raise InvalidInput("the period starts after it ends", [FieldProblem("from", "after to")])
    months = [first]
    while months[-1] < last_month:
        m = months[-1]
        months.append(dt.date(m.year + (m.month == 12), m.month % 12 + 1, 1))
        if len(months) > MAX_MONTHS:
            raise InvalidInput(
                f"at most {MAX_MONTHS} months", [FieldProblem("from", "period too long")]
            )
    loaded = services.policy_runtime.last
    known = [
        a.agreement
        for a in (loaded.agreements if loaded else ())
        if a.agreement is not None and a.agreement.id == agreement_id
    ]
    if not known or (
        "oversight" not in principal.scopes and not any(a.party(principal.party_id) for a in known)
    ):
        raise NotFound(f"no agreement {agreement_id!r} that you may see")

    def run() -> dict[str, object]:
        _record_read(
            services,
            principal,
            "agreement.usage",
            {"agreement_id": agreement_id, "from": months[0].isoformat()[:7]},
        )
        usage = usage_by_party(services.audit.engine, agreement_id, months)
        return {
            "agreement_id": agreement_id,
            "months": [m.strftime("%Y-%m") for m in months],
            "parties": [u.to_json(months) for u in usage],
        }

    return await run_in_threadpool(run)
