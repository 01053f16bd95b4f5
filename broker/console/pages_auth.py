"""Sign-in, sign-out and the home page."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from broker.console import queries
from broker.console.access import Permission, allowed
from broker.console.accounts import MAX_SESSIONS, Account, Accounts, csrf_matches
from broker.console.deps import (
    LOGIN_CSRF_COOKIE,
    PREFIX,
    SESSION_COOKIE,
    ConsoleDep,
    SessionDep,
    check_csrf,
    render,
)
from broker.console.errors import CsrfRefused, SignInRefused
from broker.console.oidc import STATE_COOKIE, STATE_TTL_MS, OidcError, OidcSignIn
from broker.console.service import Console
from broker.core.errors import NotFound

router = APIRouter()

#: Days before expiry from which an agreement is on the warning list.
EXPIRY_WARNING_DAYS = 60


def _safe_next(target: str | None) -> str:
    """Only a path inside the console (no open redirect)."""
    if target and target.startswith(PREFIX + "/") and not target.startswith("//"):
        return target
    return PREFIX + "/"


def _set_login_csrf(response: Response, token: str, console: ConsoleDep) -> None:
    """The login form's CSRF cookie (double submit): the form and the cookie must agree."""
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=1800,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=console.secure_cookies,
    )


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, console: ConsoleDep, next: str | None = None) -> Response:
    token = secrets.token_urlsafe(32)
    response = render(
        request,
        "login.html",
        {"login_csrf": token, "next": _safe_next(next), "oidc": console.oidc is not None},
    )
    _set_login_csrf(response, token, console)
    return response


@router.post("/login")
def login(
    request: Request,
    console: ConsoleDep,
    username: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(max_length=1000)],
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    if not csrf_matches(request.cookies.get(LOGIN_CSRF_COOKIE, ""), csrf):
        raise CsrfRefused("the sign-in form has expired: reload the page and try again")
    console.throttle.check(request.client.host if request.client else "unknown")
    try:
        account = console.accounts.authenticate(username.strip().lower(), password)
    except SignInRefused as e:
        console.record_action(None, "sign-in-refused", username=username.strip().lower()[:100])
        token = secrets.token_urlsafe(32)
        response = render(
            request,
            "login.html",
            {
                "login_csrf": token,
                "next": _safe_next(next),
                "error": e.detail,
                "username": username,
            },
            status_code=401,
        )
        _set_login_csrf(response, token, console)
        return response
    return _signed_in(console, account, _safe_next(next), "password")


def _signed_in(console: Console, account: Account, target: str, method: str) -> Response:
    console.record_action(account, "sign-in", role=account.role.value, method=method)
    session_id, _ = console.accounts.open_session(account)
    redirect = RedirectResponse(target, status_code=303)
    redirect.set_cookie(
        SESSION_COOKIE,
        session_id,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=console.secure_cookies,
    )
    redirect.delete_cookie(LOGIN_CSRF_COOKIE, path=PREFIX)
    return redirect


def _oidc_of(console: Console) -> OidcSignIn:
    if console.oidc is None:
        raise NotFound("sign-in with an identity provider is not configured")
    return console.oidc


@router.get("/login/oidc")
def oidc_begin(console: ConsoleDep, next: str | None = None) -> Response:
    """Send the browser to the identity provider, binding the sign-in to this browser."""
    url, state = _oidc_of(console).begin(_safe_next(next))
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(  # Lax: the provider's redirect back is a cross-site top-level GET
        STATE_COOKIE,
        state,
        max_age=STATE_TTL_MS // 1000,
        path=PREFIX,
        httponly=True,
        samesite="lax",
        secure=console.secure_cookies,
    )
    return response


@router.get("/login/oidc/callback")
def oidc_callback(
    request: Request,
    console: ConsoleDep,
    code: Annotated[str | None, Query(max_length=2000)] = None,
    state: Annotated[str | None, Query(max_length=200)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """The identity provider's answer: the officer signs in when an account is linked to the
    identity (issuer and subject), active and not locked. Every refusal is logged."""
    oidc = _oidc_of(console)
    try:
        if error or not code or not state:
            raise OidcError(f"the identity provider did not sign you in ({error or 'no code'})")
        identity = oidc.finish(code, state, request.cookies.get(STATE_COOKIE))
    except OidcError as e:
        console.record_action(None, "sign-in-refused", method="oidc", reason=e.detail[:200])
        raise
    try:
        account = console.accounts.find_linked(identity.issuer, identity.subject)
    except SignInRefused as e:
        console.record_action(
            None,
            "sign-in-refused",
            method="oidc",
            reason=e.detail,
            issuer=identity.issuer,
            subject=identity.subject[:255],
            claimed_name=identity.name,
        )
        raise OidcError("there is no active console account linked to this identity") from e
    response = _signed_in(console, account, _safe_next(identity.next_path), "oidc")
    response.delete_cookie(STATE_COOKIE, path=PREFIX)
    return response


@router.post("/logout")
def logout(
    request: Request,
    console: ConsoleDep,
    session: SessionDep,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, session, csrf)
    console.accounts.close_session(request.cookies.get(SESSION_COOKIE, ""))
    console.record_action(session.account, "sign-out")
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=PREFIX)
    return response


@router.get("/sessions", response_class=HTMLResponse)
def sessions_page(request: Request, console: ConsoleDep, session: SessionDep) -> Response:
    """The officer's own sessions, each of which they may end."""
    return render(
        request,
        "sessions.html",
        {
            "sessions": console.accounts.list_sessions(session.account.username),
            "current": Accounts.handle_of(request.cookies.get(SESSION_COOKIE, "")),
            "max_sessions": MAX_SESSIONS,
        },
    )


@router.post("/sessions/end")
def end_session(
    request: Request,
    console: ConsoleDep,
    session: SessionDep,
    handle: Annotated[str, Form(max_length=64)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """End one of the officer's sessions (this one signs them out). Unknown handles: 404."""
    check_csrf(request, session, csrf)
    if not console.accounts.end_sessions(session.account.username, handle):
        raise NotFound("no such session of yours")
    console.record_action(session.account, "session-ended", handle=handle)
    if handle == Accounts.handle_of(request.cookies.get(SESSION_COOKIE, "")):
        response = RedirectResponse(f"{PREFIX}/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=PREFIX)
        return response
    return RedirectResponse(f"{PREFIX}/sessions", status_code=303)


def expiring(console_agreements: list[object], today: dt.date) -> list[dict[str, object]]:
    """Summaries of active agreements expiring within ``EXPIRY_WARNING_DAYS``, soonest first."""
    out = []
    for a in console_agreements:
        summary = a.summary()  # type: ignore[attr-defined]
        expires = summary.get("expires_on")
        if summary.get("status") != "active" or not isinstance(expires, str):
            continue
        days = (dt.date.fromisoformat(expires) - today).days
        if days <= EXPIRY_WARNING_DAYS:
            out.append({**summary, "days_left": days})
    return sorted(out, key=lambda s: int(str(s["days_left"])))


@router.get("/", response_class=HTMLResponse)
def home(request: Request, console: ConsoleDep, session: SessionDep) -> Response:
    account = session.account
    console.record_read(account, "home", {})
    today = dt.datetime.now(dt.UTC).date()
    agreements = console.visible_agreements(account)
    pending = None
    if allowed(account, Permission.BREAK_GLASS):
        pending = queries.count_pending_break_glass(console.engine, console.scope(account))
    checkpoint = console.services.audit.latest_checkpoint()
    return render(
        request,
        "home.html",
        {
            "agreements": len(agreements),
            "expiring": expiring(list(agreements), today),
            "review_due": [a.summary() for a in agreements if a.status.review_due],
            "pending": pending,
            "checkpoint": checkpoint,
        },
    )
