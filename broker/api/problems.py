"""The one place where errors become HTTP responses (the console's pages too).

Domain errors (:mod:`broker.core.errors`) become RFC 9457 ``application/problem+json``; token
endpoint errors become RFC 6749 §5.2 JSON. Anything unexpected becomes a bare 500 problem with
the request id and nothing else: no stack trace ever reaches a client.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from adapters.errors import SourceError, SourceTimeout, SubjectNotFound
from broker.core.errors import (
    AuthError,
    BrokerError,
    ConfigurationError,
    Conflict,
    FieldProblem,
    Forbidden,
    InvalidInput,
    InvalidToken,
    NotFound,
    OAuthError,
    Refused,
    TooManyRequests,
    Unavailable,
)
from broker.exchange.limits import RateLimited

PROBLEM_JSON = "application/problem+json"
log = structlog.get_logger("broker.api")

#: Status for each domain error class; the most specific class in the MRO wins.
STATUS_FOR: dict[type[BrokerError], int] = {
    SubjectNotFound: 404,
    SourceTimeout: 504,
    SourceError: 502,
    RateLimited: 429,
    TooManyRequests: 429,
    Refused: 403,
    InvalidInput: 422,
    NotFound: 404,
    Conflict: 409,
    InvalidToken: 401,
    Forbidden: 403,
    AuthError: 401,
    Unavailable: 503,
    ConfigurationError: 503,
    BrokerError: 500,
}


def status_for(error: BrokerError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_FOR:
            return STATUS_FOR[cls]
    return 500  # pragma: no cover - BrokerError is always in the MRO


def _request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


def problem(
    request: Request,
    status: int,
    title: str,
    detail: str,
    *,
    errors: Sequence[FieldProblem] = (),
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "request_id": _request_id(request),
    }
    if errors:
        body["errors"] = [{"location": e.location, "message": e.message} for e in errors]
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def oauth_response(error: OAuthError) -> JSONResponse:
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    if error.status_code == 401:
        headers["WWW-Authenticate"] = 'Bearer error="invalid_client"'
    return JSONResponse(
        {"error": error.error, "error_description": error.detail},
        status_code=error.status_code,
        headers=headers,
    )


def _location(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:] or parts
    return ".".join(parts) or "request"


def retry_after_header(exc: TooManyRequests) -> dict[str, str]:
    """Every 429 says when to try again (RFC 9110 §10.2.3), in whole seconds, at least 1."""
    return {"Retry-After": str(max(1, exc.retry_after_seconds))}


def problem_body(exc: BrokerError, request_id: str) -> tuple[int, dict[str, Any]]:
    """Status and RFC 9457 body for a domain error (also what an idempotent retry gets)."""
    status = status_for(exc)
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": exc.title,
        "status": status,
        "detail": exc.detail,
        "request_id": request_id,
    }
    if isinstance(exc, InvalidInput) and exc.problems:
        body["errors"] = [{"location": e.location, "message": e.message} for e in exc.problems]
    body.update(exc.extra)
    return status, body


async def _on_broker_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BrokerError)
    if isinstance(exc, OAuthError):
        return oauth_response(exc)
    status, body = problem_body(exc, _request_id(request))
    headers = None
    if status == 401:
        headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    elif status == 403 and isinstance(exc, Forbidden):
        headers = {"WWW-Authenticate": 'Bearer error="insufficient_scope"'}
    elif isinstance(exc, TooManyRequests):
        headers = retry_after_header(exc)
    elif isinstance(exc, Unavailable) and exc.retry_after_seconds is not None:
        headers = {"Retry-After": str(max(1, exc.retry_after_seconds))}
    if status >= 500:
        log.error("request failed", error=type(exc).__name__, detail=exc.detail)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        FieldProblem(_location(err.get("loc", ())), str(err.get("msg", "invalid")))
        for err in exc.errors()
    ]
    return problem(
        request, 422, "Invalid request", "the request has invalid fields", errors=problems
    )


async def _on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else "request refused"
    return problem(
        request, exc.status_code, detail, detail, headers=dict(exc.headers or {}) or None
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error", error=type(exc).__name__, exc_info=exc)
    return problem(request, 500, "Internal error", "the broker could not complete this request")


def install(app: FastAPI) -> None:
    app.add_exception_handler(BrokerError, _on_broker_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(Exception, _on_unexpected)
