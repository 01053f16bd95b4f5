"""People under oversight: every exchange one verified user of the officer's party made, and the
party's suspended users, with suspend and reinstate for its governance officers.

A user is named by the identity provider's issuer and their subject there (never a display name).
A governance officer sees and suspends only its own party's users; officers who see every party
(oversight, audit) may list another party's with ``party``, and never suspend. Each listing is an
``audit-read`` entry; each suspension and reinstatement an admin event (and a console action in
the log).
"""

from __future__ import annotations

import hashlib
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from broker.audit.users import UserRef, user_exchanges
from broker.console.access import Permission, party_wide
from broker.console.accounts import Account, Session
from broker.console.deps import PREFIX, ConsoleDep, check_csrf, render, require
from broker.console.errors import RoleRefused
from broker.identity.suspensions import MAX_REASON_CHARS, check_user

router = APIRouter()
UsersSession = Annotated[Session, require(Permission.USERS)]
SuspendSession = Annotated[Session, require(Permission.SUSPEND_USERS)]
PAGE_SIZE = 50


def party_of(account: Account, party: str) -> str:
    """The party whose users the officer asks about. Raises RoleRefused for another party's
    users unless the officer sees every party."""
    if not party or party == account.party_id:
        return account.party_id
    if party_wide(account):
        return party
    raise RoleRefused(f"you see only the users of your own party ({account.party_id})")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@router.get("/users", response_class=HTMLResponse)
def users(request: Request, console: ConsoleDep, session: UsersSession) -> Response:
    params = {k: v.strip() for k, v in request.query_params.items()}
    account = session.account
    party_id = party_of(account, params.get("party", ""))
    issuer, subject = params.get("issuer", ""), params.get("subject", "")
    page = None
    suspension = None
    if issuer and subject:
        check_user(issuer, subject)
        console.record_read(
            account,
            "users.exchanges",
            {
                "party": party_id,
                "user_issuer": issuer,
                "user_sha256": _sha256(subject),
                **({"cursor": params["cursor"]} if params.get("cursor") else {}),
            },
        )
        user = UserRef(party_id, issuer, subject)
        page = user_exchanges(
            console.engine, user, cursor=params.get("cursor") or None, limit=PAGE_SIZE
        )
        suspension = console.services.suspensions.get(party_id, issuer, subject)
    else:
        console.record_read(account, "users", {"party": party_id})
    next_url = None
    if page is not None and page.next_cursor:
        kept = {k: v for k, v in params.items() if v and k != "cursor"}
        next_url = f"{PREFIX}/users?" + urlencode({**kept, "cursor": page.next_cursor})
    return render(
        request,
        "users.html",
        {
            "party_id": party_id,
            "party_name": console.party_name(party_id),
            "issuer": issuer,
            "subject": subject,
            "page": page,
            "next_url": next_url,
            "show_role": True,
            "suspension": suspension,
            "suspended": console.services.suspensions.list(party_id),
            "may_suspend": party_id == account.party_id,
            "max_reason": MAX_REASON_CHARS,
            "done": params.get("done", ""),
        },
    )


def _user_url(issuer: str, subject: str, done: str) -> str:
    return f"{PREFIX}/users?" + urlencode({"issuer": issuer, "subject": subject, "done": done})


@router.post("/users/suspend")
def suspend(
    request: Request,
    console: ConsoleDep,
    session: SuspendSession,
    issuer: Annotated[str, Form(max_length=500)],
    subject: Annotated[str, Form(max_length=255)],
    reason: Annotated[str, Form(max_length=MAX_REASON_CHARS)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Suspend a verified user of the officer's own party: on every instance within 2 s."""
    check_csrf(request, session, csrf)
    account = session.account
    issuer, subject = issuer.strip(), subject.strip()
    console.services.suspensions.suspend(
        account.party_id, issuer, subject, reason=reason, actor=account.actor
    )
    console.record_action(account, "user-suspend", user_issuer=issuer, user_sha256=_sha256(subject))
    return RedirectResponse(_user_url(issuer, subject, "suspended"), status_code=303)


@router.post("/users/reinstate")
def reinstate(
    request: Request,
    console: ConsoleDep,
    session: SuspendSession,
    issuer: Annotated[str, Form(max_length=500)],
    subject: Annotated[str, Form(max_length=255)],
    reason: Annotated[str, Form(max_length=MAX_REASON_CHARS)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, session, csrf)
    account = session.account
    issuer, subject = issuer.strip(), subject.strip()
    console.services.suspensions.reinstate(
        account.party_id, issuer, subject, reason=reason, actor=account.actor
    )
    console.record_action(
        account, "user-reinstate", user_issuer=issuer, user_sha256=_sha256(subject)
    )
    return RedirectResponse(_user_url(issuer, subject, "reinstated"), status_code=303)
