"""The Information Asset Register: every verified dataset entry, and one dataset with its owner,
classification, retention, lawful bases, the agreements that use it and their usage, and its next
review date (overdue flagged). Agreements and usage are those the officer may see."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from broker.agreements.loader import LoadResult
from broker.agreements.register_view import dataset_view, next_review
from broker.agreements.status import uk_date
from broker.audit.usage import exchanges_by_agreement
from broker.console.access import Permission
from broker.console.accounts import Session
from broker.console.deps import ConsoleDep, render, require
from broker.core.errors import NotFound, Unavailable

router = APIRouter()
RegisterSession = Annotated[Session, require(Permission.AGREEMENTS)]


def _loaded(console: ConsoleDep) -> LoadResult:
    last = console.services.policy_runtime.last
    if last is None:
        raise Unavailable("agreements are not loaded")
    return last


def _today(console: ConsoleDep) -> dt.date:
    return uk_date(dt.datetime.fromtimestamp(console.services.clock(), dt.UTC))


@router.get("/register", response_class=HTMLResponse)
def register(request: Request, console: ConsoleDep, session: RegisterSession) -> Response:
    console.record_read(session.account, "register", {})
    last = _loaded(console)
    visible = console.visible_agreements(session.account)
    today = _today(console)
    rows = []
    for dataset_id in sorted(last.register.entries):
        entry = last.register.entries[dataset_id]
        using = [
            a
            for a in visible
            if a.agreement is not None and any(f.dataset == dataset_id for f in a.agreement.flows)
        ]
        rows.append({"entry": entry, "review": next_review(entry, using, today)})
    return render(request, "register.html", {"rows": rows})


@router.get("/register/{dataset}", response_class=HTMLResponse)
def register_entry(
    request: Request, dataset: str, console: ConsoleDep, session: RegisterSession
) -> Response:
    last = _loaded(console)
    entry = last.register.get(dataset)
    if entry is None:
        raise NotFound(f"no verified register entry {dataset!r}")
    console.record_read(session.account, "register-entry", {"dataset": dataset})
    usage = exchanges_by_agreement(console.engine, dataset)
    view = dataset_view(
        entry,
        last.register.digests.get(dataset),
        console.visible_agreements(session.account),
        usage,
        _today(console),
    )
    return render(request, "register_entry.html", {"d": view})
