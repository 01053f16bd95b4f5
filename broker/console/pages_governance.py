"""Break-glass review queue, integrity (checkpoint, background verification)."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from broker.agreements.break_glass import review_days
from broker.audit.reviews import deadline_of
from broker.audit.search import get_exchange
from broker.console import queries
from broker.console.access import Permission
from broker.console.accounts import Session
from broker.console.deps import PREFIX, ConsoleDep, check_csrf, render, require
from broker.console.tables import console_reviews
from broker.core.errors import Conflict, InvalidInput

router = APIRouter()
QueueSession = Annotated[Session, require(Permission.BREAK_GLASS)]
ReviewSession = Annotated[Session, require(Permission.REVIEW)]
IntegritySession = Annotated[Session, require(Permission.INTEGRITY)]
VerifySession = Annotated[Session, require(Permission.VERIFY)]

OUTCOMES = ("appropriate", "referred")
MAX_NOTE_CHARS = 2000
#: Waiting reviews are shown soonest due first, up to this many on one page.
MAX_WAITING = 500


def _due_ms(entry: dict[str, object], days: dict[tuple[str, str], int]) -> int:
    at = dt.datetime.fromisoformat(str(entry["time"]).replace("Z", "+00:00"))
    return deadline_of(entry, days, int(at.timestamp() * 1000))


@router.get("/break-glass", response_class=HTMLResponse)
def queue(
    request: Request,
    console: ConsoleDep,
    session: QueueSession,
    status: str = "pending",
    cursor: str | None = None,
) -> Response:
    if status not in ("pending", "reviewed", "all"):
        raise InvalidInput("status must be pending, reviewed or all")
    console.record_read(session.account, "break-glass", {"status": status})
    page = queries.break_glass_queue(
        console.engine,
        status=status,
        scope=console.scope(session.account),
        cursor=cursor,
        limit=MAX_WAITING if status == "pending" else 25,
    )
    days = review_days(console.agreements())
    due = {item.entry["exchange_id"]: _due_ms(item.entry, days) for item in page.items}
    if status == "pending":  # overdue and soonest due first
        page.items.sort(key=lambda item: due[item.entry["exchange_id"]])
    now_ms = int(console.services.clock() * 1000)
    return render(
        request,
        "break_glass.html",
        {"page": page, "status": status, "due": due, "now_ms": now_ms},
    )


@router.post("/break-glass/{exchange_id}")
def review(
    request: Request,
    exchange_id: str,
    console: ConsoleDep,
    session: ReviewSession,
    outcome: Annotated[str, Form(max_length=20)],
    note: Annotated[str, Form(max_length=MAX_NOTE_CHARS)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Mark a break-glass exchange appropriate or referred. The note stays in the console's
    table; the log gets the outcome and the note's SHA-256."""
    check_csrf(request, session, csrf)
    if outcome not in OUTCOMES:
        raise InvalidInput("the outcome is appropriate or referred")
    if outcome == "referred" and not note.strip():
        raise InvalidInput("say why the exchange is referred")
    entry = get_exchange(console.engine, exchange_id, scope=console.scope(session.account))
    if not entry.get("break_glass"):
        raise InvalidInput("this exchange did not break glass")
    account = session.account
    try:
        with console.engine.begin() as conn:
            conn.execute(
                insert(console_reviews).values(
                    exchange_id=exchange_id,
                    outcome=outcome,
                    note=note.strip(),
                    reviewer=account.username,
                    reviewer_party=account.party_id,
                    reviewed_ms=int(console.services.clock() * 1000),
                )
            )
    except IntegrityError as e:
        raise Conflict("this exchange has been reviewed already") from e
    console.record_action(
        account,
        "break-glass-review",
        exchange_id=exchange_id,
        outcome=outcome,
        note_sha256=hashlib.sha256(note.strip().encode()).hexdigest(),
    )
    return RedirectResponse(f"{PREFIX}/break-glass?reviewed={exchange_id}", status_code=303)


@router.get("/integrity", response_class=HTMLResponse)
def integrity(request: Request, console: ConsoleDep, session: IntegritySession) -> Response:
    console.record_read(session.account, "integrity", {})
    log = console.services.audit
    return render(
        request,
        "integrity.html",
        {
            "checkpoint": log.latest_checkpoint(),
            "size": log.size(),
            "origin": log.signer.origin,
            "verifier_key": log.signer.verifier_key(),
            "current": console.verifier.current(),
            "last": console.verifier.last_finished(),
        },
    )


@router.post("/integrity/verify")
def start_verification(
    request: Request,
    console: ConsoleDep,
    session: VerifySession,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, session, csrf)
    state = console.verifier.start(session.account.username)
    console.record_action(session.account, "verify-log", run_id=state.run_id)
    if request.headers.get("accept", "").startswith("application/json"):
        return JSONResponse(state.to_json(), status_code=202)
    return RedirectResponse(f"{PREFIX}/integrity", status_code=303)


@router.get("/integrity/status")
def verification_status(console: ConsoleDep, session: IntegritySession) -> Response:
    current = console.verifier.current()
    return JSONResponse(current.to_json() if current else {"running": False, "run_id": None})
