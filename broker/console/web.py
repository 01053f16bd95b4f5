"""The console as an ASGI app mounted at ``/console``: dependencies, security headers, errors.

Pages are server-rendered Jinja2; one small vendored script (``static/console.js``) re-checks
proofs in the browser and polls verification progress. Sessions are server-side
(:mod:`broker.console.accounts`): the cookie is HttpOnly, SameSite=Strict, Path=/console, and
Secure when the broker's public URL is https. Every POST needs the session's CSRF token (a form
field or the ``X-CSRF-Token`` header); the sign-in form, made before any session, uses a
double-submit cookie instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from broker.audit.entry import format_time_ms
from broker.console.access import Permission, allowed
from broker.console.accounts import Session, csrf_matches
from broker.console.errors import CsrfRefused, RoleRefused, SessionRequired
from broker.console.oidc import OidcError
from broker.console.service import Console, build_console
from broker.console.throttle import TooManyAttempts
from broker.container import Services
from broker.core.errors import BrokerError, Conflict, InvalidInput, NotFound, Unavailable

HERE = Path(__file__).parent
SESSION_COOKIE = "broker_console"
LOGIN_CSRF_COOKIE = "broker_console_login"
PREFIX = "/console"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


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


def build_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    env = templates.env
    env.filters["ms_time"] = _time
    env.filters["iso_time"] = _iso_time
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


def _error_page(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    return render(request, "error.html", {"title": title, "detail": detail}, status_code=status)


def install_errors(app: FastAPI) -> None:
    async def session_required(request: Request, exc: Exception) -> Response:
        if request.method == "GET":
            target = request.url.path
            if request.url.query:
                target += "?" + request.url.query
            return RedirectResponse(f"{PREFIX}/login?next={quote(target)}", status_code=303)
        return _error_page(request, 401, "Sign-in required", str(exc))

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, BrokerError)
        return _error_page(request, 403, exc.title, exc.detail)

    async def broker_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, BrokerError)
        status = 400
        if isinstance(exc, NotFound):
            status = 404
        elif isinstance(exc, Conflict):
            status = 409
        elif isinstance(exc, InvalidInput):
            status = 422
        elif isinstance(exc, Unavailable):
            status = 503
        elif isinstance(exc, TooManyAttempts):
            status = 429
        return _error_page(request, status, exc.title, exc.detail)

    app.add_exception_handler(SessionRequired, session_required)
    app.add_exception_handler(RoleRefused, refused)
    app.add_exception_handler(CsrfRefused, refused)
    app.add_exception_handler(OidcError, refused)
    app.add_exception_handler(BrokerError, broker_error)


def create_console_app(services: Services) -> FastAPI:
    """The console ASGI app. Mount it with ``app.mount("/console", create_console_app(s))``."""
    from broker.console import (
        pages_agreements,
        pages_auth,
        pages_exchanges,
        pages_governance,
        pages_reports,
    )

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.console = build_console(services, pseudonyms=services.pseudonyms)
    app.state.templates = build_templates()

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.url.path.startswith(f"{PREFIX}/static/"):
            response.headers["Cache-Control"] = "public, max-age=3600"
        return response

    install_errors(app)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    for module in (pages_auth, pages_exchanges, pages_agreements, pages_governance, pages_reports):
        app.include_router(module.router)
    return app
