"""The console as an ASGI app mounted at ``/console``: security headers, errors, the pages.

Pages are server-rendered Jinja2 (:mod:`broker.console.deps` holds what they share); one small
vendored script (``static/console.js``) re-checks proofs in the browser and polls verification
progress. Errors get the API's status (:func:`broker.api.problems.problem_body`, the one
mapping) and are shown as an HTML page; a GET without a session is sent to sign in instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from broker.api.problems import problem_body, retry_after_header
from broker.console import (
    pages_agreements,
    pages_auth,
    pages_exchanges,
    pages_governance,
    pages_impact,
    pages_register,
    pages_reports,
    pages_subject_access,
    pages_users,
)
from broker.console.deps import HERE, PREFIX, build_templates, render
from broker.console.errors import SessionRequired
from broker.console.service import build_console
from broker.container import Services
from broker.core.errors import BrokerError, TooManyRequests

log = structlog.get_logger("broker.console")

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


def _error_page(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    return render(request, "error.html", {"title": title, "detail": detail}, status_code=status)


def _error_response(
    request: Request, exc: BrokerError, status: int, body: dict[str, Any]
) -> Response:
    page = _error_page(request, status, body["title"], body["detail"])
    if isinstance(exc, TooManyRequests):
        page.headers.update(retry_after_header(exc))
    return page


def install_errors(app: FastAPI) -> None:
    async def broker_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, BrokerError)
        if isinstance(exc, SessionRequired) and request.method == "GET":
            target = request.url.path
            if request.url.query:
                target += "?" + request.url.query
            return RedirectResponse(f"{PREFIX}/login?next={quote(target)}", status_code=303)
        status, body = problem_body(exc, "")
        if status >= 500:
            log.error("console request failed", error=type(exc).__name__, detail=exc.detail)
        return _error_response(request, exc, status, body)

    app.add_exception_handler(BrokerError, broker_error)


def create_console_app(services: Services) -> FastAPI:
    """The console ASGI app. Mount it with ``app.mount("/console", create_console_app(s))``."""
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
    for module in (
        pages_auth,
        pages_exchanges,
        pages_impact,  # before pages_agreements: /agreements/impact is not an agreement id
        pages_agreements,
        pages_governance,
        pages_register,
        pages_reports,
        pages_subject_access,
        pages_users,
    ):
        app.include_router(module.router)
    return app
