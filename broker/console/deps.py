"""What every console page uses: the cookie names, the page dependencies and rendering.

Sessions are server-side (:mod:`broker.console.accounts`): the cookie is HttpOnly,
SameSite=Strict, Path=/console, and Secure when the broker's public URL is https. Every POST
needs the session's CSRF token (a form field or the ``X-CSRF-Token`` header); the sign-in form,
made before any session, uses a double-submit cookie instead. The app itself is assembled in
:mod:`broker.console.web`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from broker.audit.entry import format_time_ms
from broker.console.access import Permission, allowed
from broker.console.accounts import Session, csrf_matches
from broker.console.errors import CsrfRefused, RoleRefused
from broker.console.service import Console

HERE = Path(__file__).parent
SESSION_COOKIE = "broker_console"
LOGIN_CSRF_COOKIE = "broker_console_login"
PREFIX = "/console"


def _time(ms: object) -> str:
    if not isinstance(ms, int):
        return ""
    return format_time_ms(ms).replace("T", " ").replace("Z", " UTC")


def _iso_time(text: object) -> Markup:
    """A log time (``2026-11-29T10:33:20.123Z``) as ``<time>`` showing ``2026-11-29 10:33:20``."""
    if not isinstance(text, str) or "T" not in text:
        return Markup("")
    shown = text.replace("T", " ")[:19]
    return Markup('<time datetime="{}">{}</time>').format(text, shown)


def _outcome(value: object) -> str:
    """An exchange's outcome as officers read it (``not_found`` is never shown as allow)."""
    return "not found at the source" if value == "not_found" else str(value or "")


def build_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    env = templates.env
    env.filters["ms_time"] = _time
    env.filters["iso_time"] = _iso_time
    env.filters["outcome"] = _outcome
    env.globals["prefix"] = PREFIX
    env.globals["Permission"] = Permission
    env.globals["allowed"] = allowed
    env.trim_blocks = True
    env.lstrip_blocks = True
    return templates


def get_console(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


ConsoleDep = Annotated[Console, Depends(get_console)]


def current_session(request: Request, console: ConsoleDep) -> Session:
    """The signed-in officer. Raises SessionRequired."""
    session = console.accounts.session(request.cookies.get(SESSION_COOKIE))
    request.state.session = session
    return session


SessionDep = Annotated[Session, Depends(current_session)]


def require(permission: Permission) -> Any:
    """A dependency passing a session whose role holds ``permission`` (else RoleRefused)."""

    def dependency(session: SessionDep) -> Session:
        if not allowed(session.account, permission):
            raise RoleRefused(f"your role ({session.account.role}) may not use {permission}")
        return session

    return Depends(dependency)


def check_csrf(request: Request, session: Session, form_token: str | None) -> None:
    """Raises CsrfRefused unless the form field or header carries this session's token."""
    token = form_token or request.headers.get("x-csrf-token")
    if not csrf_matches(session.csrf, token):
        raise CsrfRefused("the form has expired or did not come from this console: try again")


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
) -> HTMLResponse:
    templates: Jinja2Templates = request.app.state.templates
    session: Session | None = getattr(request.state, "session", None)
    full = {
        "session": session,
        "account": session.account if session else None,
        "csrf": session.csrf if session else "",
        "today": dt.datetime.now(dt.UTC).date(),
        **context,
    }
    return templates.TemplateResponse(request, name, full, status_code=status_code)
