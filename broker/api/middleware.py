"""ASGI middleware: request id, body size limit, metrics and one log line per request.

Written as plain ASGI (not ``BaseHTTPMiddleware``) because it sits on the hot path.
Paths are logged and counted by their route template (``/v1/exchanges/{id}``), never raw, so
identifiers in paths or query strings never reach logs or metric labels.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from broker.observability import Metrics

log = structlog.get_logger("broker.http")
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _too_large(request_id: str, limit: int) -> tuple[Message, Message]:
    body = json.dumps(
        {
            "type": "about:blank",
            "title": "Request too large",
            "status": 413,
            "detail": f"the request body is larger than {limit} bytes",
            "request_id": request_id,
        }
    ).encode()
    start: Message = {
        "type": "http.response.start",
        "status": 413,
        "headers": [
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", request_id.encode()),
        ],
    }
    return start, {"type": "http.response.body", "body": body}


class _BodyTooLarge(Exception):
    pass


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = (
            incoming if incoming and _SAFE_REQUEST_ID.match(incoming) else secrets.token_hex(8)
        )
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500
        method = scope.get("method", "")

        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            start, body = _too_large(request_id, self.max_body_bytes)
            await send(start)
            await send(body)
            self._record(scope, method, 413, started)
            structlog.contextvars.unbind_contextvars("request_id")
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise _BodyTooLarge
            return message

        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_id)
        except _BodyTooLarge:
            if not response_started:
                start, body = _too_large(request_id, self.max_body_bytes)
                await send(start)
                await send(body)
            status = 413
        finally:
            self._record(scope, method, status, started)
            structlog.contextvars.unbind_contextvars("request_id")

    def _record(self, scope: Scope, method: str, status: int, started: float) -> None:
        elapsed = time.perf_counter() - started
        route: Any = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        self.metrics.http_requests.labels(template, method, str(status)).inc()
        self.metrics.http_latency.labels(template, method).observe(elapsed)
        log.info(
            "request",
            method=method,
            route=template,
            status=status,
            duration_ms=round(elapsed * 1000, 2),
            client_id=scope.get("state", {}).get("client_id"),
        )
