"""Exchange search (filters, cursor paging, newest first) and one exchange with its proof."""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from broker.audit.search import SearchFilters, get_exchange, search
from broker.console import queries
from broker.console.access import Permission
from broker.console.accounts import Session
from broker.console.deps import PREFIX, ConsoleDep, check_csrf, render, require
from broker.console.proofs import check_inclusion
from broker.core import nhs_number
from broker.core.errors import InvalidInput

router = APIRouter()
ExchangesSession = Annotated[Session, require(Permission.EXCHANGES)]

FILTER_NAMES = ("agreement", "party", "client", "dataset", "decision", "from", "to")
DECISIONS = ("allow", "deny", "held", "error", "not_found")
PAGE_SIZE = 50


def _day_ms(text: str, name: str) -> int:
    try:
        day = dt.date.fromisoformat(text)
    except ValueError as e:
        raise InvalidInput(f"{name} must be a date (YYYY-MM-DD)") from e
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)


def filters_from(params: dict[str, str]) -> SearchFilters:
    """Search filters from the query string. Raises InvalidInput."""
    decision = params.get("decision") or None
    if decision is not None and decision not in DECISIONS:
        raise InvalidInput("decision must be allow, deny, held, error or not_found")
    subject = params.get("subject") or ""
    pseudonyms = tuple(p for p in subject.split(",") if p)
    if any(len(p) != 64 or not all(ch in "0123456789abcdef" for ch in p) for p in pseudonyms):
        raise InvalidInput("subject must be a pseudonym (search by NHS number in the form)")
    return SearchFilters(
        agreement_id=params.get("agreement") or None,
        party_id=params.get("party") or None,
        client_id=params.get("client") or None,
        dataset=params.get("dataset") or None,
        decision=decision,
        kind="exchange",
        time_from_ms=_day_ms(params["from"], "from") if params.get("from") else None,
        time_to_ms=_day_ms(params["to"], "to") + 86_400_000 if params.get("to") else None,
        break_glass_only=params.get("break_glass") == "1",
        subject_pseudonyms=pseudonyms,
    )


@router.get("/exchanges", response_class=HTMLResponse)
def exchanges(request: Request, console: ConsoleDep, session: ExchangesSession) -> Response:
    params = {k: v.strip() for k, v in request.query_params.items()}
    error = None
    try:
        filters = filters_from(params)
    except InvalidInput as e:
        error, filters = e.detail, None
    logged = {k: v for k, v in params.items() if v}
    console.record_read(session.account, "exchanges", logged)
    page = None
    if filters is not None:
        try:
            page = search(
                console.engine,
                filters,
                cursor=params.get("cursor") or None,
                limit=PAGE_SIZE,
                scope=console.scope(session.account),
                oldest_first=params.get("order") == "oldest",
            )
        except InvalidInput as e:
            error = e.detail
    next_url = None
    if page is not None and page.next_cursor:
        kept = {k: v for k, v in params.items() if v and k != "cursor"}
        next_url = f"{PREFIX}/exchanges?" + urlencode({**kept, "cursor": page.next_cursor})
    agreements = console.visible_agreement_ids(session.account)
    return render(
        request,
        "exchanges.html",
        {
            "params": params,
            "error": error,
            "page": page,
            "next_url": next_url,
            "first_url": f"{PREFIX}/exchanges?"
            + urlencode({k: v for k, v in params.items() if v and k != "cursor"}),
            "paged": bool(params.get("cursor")),
            "agreement_ids": agreements,
            "decisions": DECISIONS,
            "subject_given": bool(params.get("subject")),
        },
        status_code=422 if error else 200,
    )


@router.post("/exchanges/search")
def search_by_form(
    request: Request,
    console: ConsoleDep,
    session: ExchangesSession,
    csrf: Annotated[str, Form()] = "",
    nhs: Annotated[str, Form(max_length=20)] = "",
    agreement: Annotated[str, Form(max_length=200)] = "",
    party: Annotated[str, Form(max_length=100)] = "",
    client: Annotated[str, Form(max_length=100)] = "",
    dataset: Annotated[str, Form(max_length=200)] = "",
    decision: Annotated[str, Form(max_length=20)] = "",
    date_from: Annotated[str, Form(alias="from", max_length=10)] = "",
    date_to: Annotated[str, Form(alias="to", max_length=10)] = "",
    break_glass: Annotated[str, Form(max_length=1)] = "",
    order: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """The search form posts here so an NHS number never sits in a URL: it is pseudonymised
    (under every key version) and the browser is sent to the GET search with pseudonyms."""
    check_csrf(request, session, csrf)
    params = {
        "agreement": agreement,
        "party": party,
        "client": client,
        "dataset": dataset,
        "decision": decision,
        "from": date_from,
        "to": date_to,
        "break_glass": break_glass,
        "order": "oldest" if order == "oldest" else "",
    }
    if nhs.strip():
        number = nhs_number.validate(nhs, location="nhs")
        params["subject"] = ",".join(
            p.value for p in console.pseudonyms.all_pseudonyms("nhs_number", number)
        )
    kept = {k: v.strip() for k, v in params.items() if v.strip()}
    return RedirectResponse(f"{PREFIX}/exchanges?{urlencode(kept)}", status_code=303)


@router.get("/exchanges/{exchange_id}", response_class=HTMLResponse)
def exchange(
    request: Request, exchange_id: str, console: ConsoleDep, session: ExchangesSession
) -> Response:
    console.record_read(session.account, "exchange", {"exchange_id": exchange_id})
    entry = get_exchange(console.engine, exchange_id, scope=console.scope(session.account))
    proof = check_inclusion(console.services.audit, exchange_id)
    review = queries.review_of(console.engine, exchange_id) if entry.get("break_glass") else None
    return render(
        request,
        "exchange.html",
        {
            "entry": entry,
            "proof": proof,
            "review": review,
            "party_name": console.party_name(entry.get("party_id")),
        },
    )
