"""Subject access at the console: open a request (by any identifier the broker knows), see what
the log holds about the subject within the officer's scope with each safeguarding hold marked,
the open requests with their due dates, and the export (printable page, JSON, CSV).

Every search and export is an entry in the log naming the subject by pseudonym only; opening and
closing a request are admin entries.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from broker.console import subject_access as sar
from broker.console.access import Permission
from broker.console.accounts import Account, Session
from broker.console.deps import PREFIX, ConsoleDep, check_csrf, render, require
from broker.core.errors import InvalidInput
from broker.core.identifiers import parse_subject
from broker.core.subject_access import IDENTIFIER_LABELS, SEARCHABLE_IDENTIFIERS

router = APIRouter()
AccessSession = Annotated[Session, require(Permission.ACCESS_REPORT)]
FORMATS = ("html", "json", "csv")


def _now(console: ConsoleDep) -> tuple[int, dt.date]:
    now = console.services.clock()
    return int(now * 1000), dt.datetime.fromtimestamp(now, dt.UTC).date()


def _findings(console: ConsoleDep, account: Account, request: sar.AccessRequest) -> sar.Findings:
    now_ms, _ = _now(console)
    return sar.findings(
        console.engine,
        request,
        scope=console.scope(account),
        holds=console.services.subjects.hold_rules(),
        now_ms=now_ms,
        party_names=console.party_names(),
    )


def _form_page(
    request: Request, console: ConsoleDep, account: Account, **extra: object
) -> HTMLResponse:
    _, today = _now(console)
    return render(
        request,
        "access_report.html",
        {
            "open_requests": sar.open_requests(console.engine, account),
            "identifier_types": [(t, IDENTIFIER_LABELS[t]) for t in SEARCHABLE_IDENTIFIERS],
            "today_iso": today.isoformat(),
            "found": None,
            **extra,
        },
        status_code=422 if extra.get("error") else 200,
    )


@router.get("/access-report", response_class=HTMLResponse)
def access_form(request: Request, console: ConsoleDep, session: AccessSession) -> Response:
    console.record_read(session.account, "subject-access-requests", {})
    return _form_page(request, console, session.account)


@router.post("/access-report", response_class=HTMLResponse)
def open_access_request(
    request: Request,
    console: ConsoleDep,
    session: AccessSession,
    csrf: Annotated[str, Form()] = "",
    subject_type: Annotated[str, Form(max_length=40)] = "nhs_number",
    subject_value: Annotated[str, Form(max_length=64)] = "",
    nhs: Annotated[str, Form(max_length=20)] = "",
    received: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Open a subject access request and show what the log holds (the identifier is
    pseudonymised here and never kept)."""
    check_csrf(request, session, csrf)
    account = session.account
    value = subject_value or nhs
    if subject_type not in SEARCHABLE_IDENTIFIERS:
        raise InvalidInput(f"search by one of {', '.join(SEARCHABLE_IDENTIFIERS)}")
    if not value.strip():
        raise InvalidInput(f"give the {IDENTIFIER_LABELS[subject_type]}")
    try:
        subject = parse_subject(subject_type, value, location=subject_type)
    except InvalidInput as e:  # the console's error page shows one sentence: name the problem
        reasons = "; ".join(p.message for p in e.problems)
        raise InvalidInput(f"{e.detail}: {reasons}" if reasons else e.detail, e.problems) from e
    now_ms, today = _now(console)
    received_on = sar.parse_received(received, today)
    pseudonyms = [p.value for p in console.pseudonyms.all_pseudonyms(subject.type, subject.value)]
    opened = sar.open_request(
        console.engine,
        account,
        subject_type=subject.type,
        pseudonyms=pseudonyms,
        received_on=received_on,
        now_ms=now_ms,
    )
    console.record_action(
        account,
        "subject-access-opened",
        request_id=opened.id,
        subject_type=subject.type,
        subject_pseudonym=pseudonyms[-1],
        received_on=opened.received_on.isoformat(),
        due_on=opened.due_on.isoformat(),
    )
    return _request_page(request, console, account, opened)


def _request_page(
    request: Request, console: ConsoleDep, account: Account, opened: sar.AccessRequest
) -> HTMLResponse:
    found = _findings(console, account, opened)
    console.record_read(
        account,
        "subject-access-search",
        {
            "request_id": opened.id,
            "subject_type": opened.subject_type,
            "subject_pseudonyms": list(opened.pseudonyms),
            "shown": len(found.lines),
            "held": len(found.held),
        },
    )
    _, today = _now(console)
    return render(
        request,
        "access_request.html",
        {"req": opened, "found": found, "today_date": today, "formats": FORMATS},
    )


@router.get("/access-report/{request_id}", response_class=HTMLResponse)
def access_request(
    request: Request, request_id: str, console: ConsoleDep, session: AccessSession
) -> Response:
    opened = sar.get_request(console.engine, session.account, request_id)
    return _request_page(request, console, session.account, opened)


@router.get("/access-report/{request_id}/export")
def export(
    request: Request,
    request_id: str,
    console: ConsoleDep,
    session: AccessSession,
    format: str = "html",
) -> Response:
    if format not in FORMATS:
        raise InvalidInput("format must be html, json or csv")
    account = session.account
    opened = sar.get_request(console.engine, account, request_id)
    found = _findings(console, account, opened)
    _, today = _now(console)
    document = sar.disclosure(found, account, today)
    console.record_read(
        account,
        "subject-access-export",
        {
            "request_id": opened.id,
            "format": format,
            "subject_pseudonyms": list(opened.pseudonyms),
            "disclosed": len(document["disclosed"]),
            "withheld": len(document["withheld"]["held_exchanges"]),
            "redacted_values": document["withheld"]["redacted_values"],
        },
    )
    name = f"subject-access-{opened.id[:8]}-{today.isoformat()}"
    if format == "json":
        return JSONResponse(
            document,
            headers={"Content-Disposition": f'attachment; filename="{name}.json"'},
        )
    if format == "csv":
        return Response(
            sar.export_csv(document),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return render(
        request,
        "access_export.html",
        {"doc": document, "req": opened, "party_name": console.party_name},
    )


@router.post("/access-report/{request_id}/close")
def close(
    request: Request,
    request_id: str,
    console: ConsoleDep,
    session: AccessSession,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, session, csrf)
    now_ms, _ = _now(console)
    sar.close_request(console.engine, session.account, request_id, now_ms)
    console.record_action(session.account, "subject-access-closed", request_id=request_id[:36])
    return RedirectResponse(f"{PREFIX}/access-report", status_code=303)
