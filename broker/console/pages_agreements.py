"""Agreements: the list (status, expiry, review flags, the 60-day warning list) and one
agreement with its parties, signatures, flows, permitted fields, lawful bases and usage."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from broker.audit.usage import usage_by_party
from broker.console import queries
from broker.console.access import Permission
from broker.console.accounts import Session
from broker.console.charts import Series, stacked_bars
from broker.console.deps import ConsoleDep, render, require
from broker.console.pages_auth import expiring
from broker.core.errors import NotFound

router = APIRouter()
AgreementsSession = Annotated[Session, require(Permission.AGREEMENTS)]
USAGE_MONTHS = 12


@router.get("/agreements", response_class=HTMLResponse)
def agreements(request: Request, console: ConsoleDep, session: AgreementsSession) -> Response:
    console.record_read(session.account, "agreements", {})
    visible = console.visible_agreements(session.account)
    today = dt.datetime.now(dt.UTC).date()
    return render(
        request,
        "agreements.html",
        {
            "summaries": sorted(
                (a.summary() for a in visible), key=lambda s: (str(s["id"]), str(s["version"]))
            ),
            "expiring": expiring(list(visible), today),
            "loaded": console.services.policy_runtime.last is not None,
        },
    )


@router.get("/agreements/{agreement_id}", response_class=HTMLResponse)
def agreement(
    request: Request, agreement_id: str, console: ConsoleDep, session: AgreementsSession
) -> Response:
    console.record_read(session.account, "agreement", {"agreement_id": agreement_id})
    versions = [
        a
        for a in console.visible_agreements(session.account)
        if a.status.agreement_id == agreement_id
    ]
    if not versions:
        raise NotFound(f"no agreement {agreement_id} that you may see")
    chosen = max(versions, key=lambda a: a.status.version or 0)
    months = queries.months_ending(dt.datetime.now(dt.UTC).date(), USAGE_MONTHS)
    figures = queries.monthly_figures(console.engine, [agreement_id], months)[agreement_id]
    top_fields, sampled = queries.fields_released_most(console.engine, agreement_id)
    # Co-signatories see each other's exchanges only as counts (agreements/visibility.py).
    by_party = usage_by_party(console.engine, agreement_id, months)
    chart = stacked_bars(
        f"Exchanges under {agreement_id} by month",
        [m.month.strftime("%b") for m in figures.months],
        [
            Series("Allowed", [m.allow for m in figures.months]),
            Series("Denied", [m.deny for m in figures.months]),
            Series("Break-glass", [m.break_glass for m in figures.months]),
        ],
    )
    flows = []
    if chosen.agreement is not None:
        for flow in chosen.agreement.flows:
            flows.append(
                {
                    "flow": flow,
                    "fields": chosen.permitted_fields(flow) or flow.permitted_fields,
                    "break_glass_fields": chosen.break_glass_fields(flow),
                    "lawful_basis": flow.lawful_basis.labels(),
                }
            )
    return render(
        request,
        "agreement.html",
        {
            "summary": chosen.summary(),
            "agreement": chosen.agreement,
            "flows": flows,
            "figures": figures,
            "by_party": by_party,
            "party_name": console.party_name,
            "chart": chart,
            "top_fields": top_fields,
            "sampled": sampled,
            "sample_size": queries.FIELDS_SAMPLE,
            "other_versions": [a.summary() for a in versions if a is not chosen],
        },
    )
