"""The impact of a draft agreement: upload or paste a draft, see what it would change.

The form starts an impact run (the API's job, :mod:`broker.exchange.impact_jobs`, logged as a
simulation) and shows its report: newly allowed, denied and undetermined requests by party and
role, fields newly released or withheld, examples, and the matrix of what could be asked. An
officer of one party (and an agreement admin) sees other parties' requests as counts only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse

from broker.agreements.draft_text import MAX_DRAFT_BYTES, parse_draft
from broker.console.access import Permission, allowed, party_wide
from broker.console.accounts import Account, Session
from broker.console.deps import PREFIX, ConsoleDep, check_csrf, render, require
from broker.console.service import Console
from broker.core.errors import InvalidInput, Unavailable
from broker.exchange.impact import MAX_DAYS
from broker.exchange.impact_jobs import ImpactJobs, Viewer

router = APIRouter()
AgreementsSession = Annotated[Session, require(Permission.AGREEMENTS)]


def _jobs(console: Console) -> ImpactJobs:
    runtime = console.services.policy_runtime
    return ImpactJobs(
        console.engine,
        console.services.audit,
        runtime.policy_dir,
        lambda: runtime.last,
        lambda: int(console.services.clock() * 1000),
    )


def _viewer(account: Account) -> Viewer:
    """Every party in detail only for those who may see every party's exchanges (oversight,
    auditors); agreement admins, who see no exchange, get their own party's view."""
    wide = party_wide(account) and allowed(account, Permission.EXCHANGES)
    return Viewer(account.party_id, account.actor, wide)


@router.get("/agreements/impact", response_class=HTMLResponse)
def impact_page(
    request: Request,
    console: ConsoleDep,
    session: AgreementsSession,
    job: str | None = None,
) -> Response:
    outcome = None
    if job:
        if len(job) > 36:
            raise InvalidInput("not an impact run id")
        console.record_read(session.account, "agreement-impact", {"job": job})
        outcome = _jobs(console).get(job, _viewer(session.account))
    return render(
        request,
        "impact.html",
        {"outcome": outcome, "max_days": MAX_DAYS, "days": 30, "draft": "", "problems": []},
    )


@router.post("/agreements/impact", response_class=HTMLResponse)
def start_impact(
    request: Request,
    console: ConsoleDep,
    session: AgreementsSession,
    csrf: Annotated[str, Form()] = "",
    draft: Annotated[str, Form(max_length=MAX_DRAFT_BYTES)] = "",
    days: Annotated[int, Form(ge=1, le=MAX_DAYS)] = 30,
    upload: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Runs the impact of the pasted or uploaded draft, then shows it (``?job=``)."""
    check_csrf(request, session, csrf)
    text = draft
    if upload is not None and upload.filename:
        raw = upload.file.read(MAX_DRAFT_BYTES + 1)
        if len(raw) > MAX_DRAFT_BYTES:
            raise InvalidInput(f"the draft is larger than {MAX_DRAFT_BYTES} bytes")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InvalidInput("the draft is not UTF-8 text") from e
    last = console.services.policy_runtime.last
    if last is None:
        raise Unavailable("agreements are not loaded")
    try:
        doc = parse_draft(
            text,
            register=last.register,
            known_parties=console.services.policy_runtime.known_parties(),
        )
    except InvalidInput as e:
        return render(
            request,
            "impact.html",
            {
                "outcome": None,
                "max_days": MAX_DAYS,
                "days": days,
                "draft": text,
                "error": e.detail,
                "problems": e.problems,
            },
            status_code=422,
        )
    jobs = _jobs(console)
    viewer = _viewer(session.account)
    job = jobs.start(viewer, doc, days)
    jobs.run(job, viewer, doc, days)
    return RedirectResponse(f"{PREFIX}/agreements/impact?job={job}", status_code=303)
