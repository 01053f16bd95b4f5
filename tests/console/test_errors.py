"""The console maps errors to statuses exactly as the API does (one mapping, in
:mod:`broker.api.problems`); the console shows the answer as an HTML page."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from markupsafe import escape

from adapters.errors import SourceTimeout, SubjectNotFound
from broker.api import problems
from broker.console.deps import build_templates
from broker.console.errors import CsrfRefused, RoleRefused, SessionRequired, SignInRefused
from broker.console.oidc import OidcError
from broker.console.throttle import TooManyAttempts
from broker.console.web import install_errors
from broker.core.errors import (
    BrokerError,
    ConfigurationError,
    Conflict,
    InvalidInput,
    NotFound,
    Refused,
    Unavailable,
)


class UnknownError(BrokerError):
    """A domain error that no table names: only its base, BrokerError, is mapped."""

    title = "Something unforeseen"


ERRORS: list[BrokerError] = [
    ConfigurationError("the bindings file is missing"),
    UnknownError("nobody mapped this"),
    BrokerError("a bare broker error"),
    InvalidInput("bad month"),
    NotFound("no such agreement"),
    Conflict("reviewed already"),
    Unavailable("the database is down"),
    Refused("denied"),
    SubjectNotFound("no record"),
    SourceTimeout("too slow"),
    SignInRefused("not signed in"),
    CsrfRefused("expired form"),
    RoleRefused("not your role"),
    OidcError("the provider refused"),
    TooManyAttempts("wait a while"),
]


def _raising(error: BrokerError) -> FastAPI:
    app = FastAPI()

    @app.post("/fail")
    def fail() -> None:
        raise error

    return app


async def _post(app: FastAPI) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://broker") as client:
        return await client.post("/fail")


async def _api(error: BrokerError) -> httpx.Response:
    app = _raising(error)
    problems.install(app)
    return await _post(app)


async def _console(error: BrokerError) -> httpx.Response:
    app = _raising(error)
    app.state.templates = build_templates()
    install_errors(app)
    return await _post(app)


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
async def test_the_console_and_the_api_give_an_error_the_same_status(error: BrokerError) -> None:
    api = await _api(error)
    page = await _console(error)
    assert page.status_code == api.status_code
    assert page.headers["content-type"].startswith("text/html")
    assert str(escape(api.json()["title"])) in page.text
    assert str(escape(api.json()["detail"])) in page.text


async def test_a_configuration_error_is_503_and_an_unknown_broker_error_500_in_both() -> None:
    configuration = ConfigurationError("the bindings file is missing")
    unknown = UnknownError("nobody mapped this")
    assert (await _api(configuration)).status_code == 503
    assert (await _console(configuration)).status_code == 503
    assert (await _api(unknown)).status_code == 500
    assert (await _console(unknown)).status_code == 500


async def test_a_console_get_without_a_session_is_sent_to_sign_in() -> None:
    app = FastAPI()

    @app.get("/page")
    def page() -> None:
        raise SessionRequired("sign in again")

    app.state.templates = build_templates()
    install_errors(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://broker") as client:
        response = await client.get("/page?x=1")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?next=/page%3Fx%3D1"
