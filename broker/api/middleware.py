"""ASGI middleware: request id, body checks, metrics and one log line per request.

Body checks for every endpoint, API and console alike: a body over the limit gets 413, whether
its length was declared or it came chunked; a JSON body (``application/json`` or ``+json``)
must be UTF-8 (RFC 8259 §8.1), so another ``charset`` or a UTF-16/32 body gets 415. Both are
RFC 9457 problems.

Written as plain ASGI (not ``BaseHTTPMiddleware``) because it sits on the hot path.
Paths are logged and counted by their route template (``/v1/exchanges/{id}``), never raw, so
identifiers in paths or query strings never reach logs or metric labels.
"""

from __future__ import annotations

import codecs
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


def _problem(request_id: str, status: int, title: str, detail: str) -> tuple[Message, Message]:
    body = json.dumps(
        {
            "type": "about:blank",
            "title": title,
            "status": status,
            "detail": detail,
            "request_id": request_id,
        }
    ).encode()
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", request_id.encode()),
        ],
    }
    return start, {"type": "http.response.body", "body": body}


def _too_large(request_id: str, limit: int) -> tuple[Message, Message]:
    return _problem(
        request_id, 413, "Request too large", f"the request body is larger than {limit} bytes"
    )


def _not_utf8(request_id: str, detail: str) -> tuple[Message, Message]:
    return _problem(request_id, 415, "Unsupported media type", detail)


def json_charset_problem(content_type: str | None) -> tuple[bool, str | None]:
    """``(is_json, problem)`` for a Content-Type: a JSON media type naming a charset other than
    UTF-8 (any case) is the problem; no charset is UTF-8."""
    if not content_type:
        return False, None
    media, *params = content_type.split(";")
    media = media.strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        return False, None
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').strip()
            if charset.lower() != "utf-8":
                return True, (
                    f"JSON bodies must be UTF-8 (RFC 8259): charset={charset!r} is not accepted;"
                    " send UTF-8 with charset=utf-8 or no charset"
                )
    return True, None


def _utf8(decoder: codecs.IncrementalDecoder | None, chunk: bytes, *, final: bool) -> bool:
    """Whether the body so far is UTF-8. A raw NUL counts as not: JSON text never holds one, and
    UTF-16 or UTF-32 JSON always does."""
    if decoder is None:
        return True
    if b"\x00" in chunk:
        return False
    try:
        decoder.decode(chunk, final=final)
    except UnicodeDecodeError:
        return False
    return True


class _BodyRefused(Exception):
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
        refusal: tuple[Message, Message] | None = None
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            refusal = _too_large(request_id, self.max_body_bytes)
        is_json, charset_problem = json_charset_problem(_header(scope, b"content-type"))
        if refusal is None and charset_problem and length != "0":
            refusal = _not_utf8(request_id, charset_problem)
        if refusal is not None:
            await send(refusal[0])
            await send(refusal[1])
            self._record(scope, method, int(refusal[0]["status"]), started)
            structlog.contextvars.unbind_contextvars("request_id")
            return

        received = 0
        decoder = codecs.getincrementaldecoder("utf-8")() if is_json else None

        async def limited_receive() -> Message:
            nonlocal received, refusal
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > self.max_body_bytes:
                    refusal = _too_large(request_id, self.max_body_bytes)
                    raise _BodyRefused
                if is_json and not _utf8(decoder, chunk, final=not message.get("more_body")):
                    refusal = _not_utf8(
                        request_id, "JSON bodies must be UTF-8 (RFC 8259): this one is not"
                    )
                    raise _BodyRefused
            return message

        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if refusal is not None:
                # The app turned the refused body into an answer of its own (a 400 for a body
                # it could not read): the refusal is sent instead, once.
                if message["type"] == "http.response.start" and not response_started:
                    response_started = True
                    status = int(refusal[0]["status"])
                    await send(refusal[0])
                    await send(refusal[1])
                return
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_id)
        except _BodyRefused:
            if not response_started and refusal is not None:
                await send(refusal[0])
                await send(refusal[1])
                status = int(refusal[0]["status"])
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
