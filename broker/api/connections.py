"""Slow and oversized clients at the connection: what the HTTP server itself enforces.

uvicorn closes an idle kept-alive connection (``timeout_keep_alive``) but has no deadline for
reading a request: a client that sends its headers or its body one byte at a time holds a
connection (and, for a body, a running request) for as long as it likes, and httptools keeps
every header line it is sent. :class:`GuardedHttpToolsProtocol` is uvicorn's httptools protocol
with three limits added, one connection at a time:

- the request line and headers must arrive within ``http_header_timeout_seconds`` of the
  connection opening (or of the first byte of a later request on a kept-alive connection);
- the body within ``http_body_timeout_seconds`` of the headers;
- the request line and headers together stay under ``http_headers_max_bytes``.

A request past a deadline gets 408, one with too much header 431 (RFC 9457 problems, as the
middleware's), unless a response has already begun; the connection is then closed and a
warning logged (no address, path or header value: only which limit). ``broker serve`` runs
every process with it (:func:`server_options`).
"""

from __future__ import annotations

import asyncio
import enum
import functools
import json
from dataclasses import dataclass
from typing import Any

import structlog
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from broker.settings import Settings

log = structlog.get_logger("broker.http")


@dataclass(frozen=True)
class ConnectionLimits:
    """The limits of :class:`GuardedHttpToolsProtocol` (from :class:`Settings`)."""

    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0
    headers_max_bytes: int = 16384

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        return cls(
            header_timeout_seconds=settings.http_header_timeout_seconds,
            body_timeout_seconds=settings.http_body_timeout_seconds,
            headers_max_bytes=settings.http_headers_max_bytes,
        )


class _Phase(enum.Enum):
    HEADERS = "headers"
    BODY = "body"
    IDLE = "idle"  # a request read whole; the next has not begun


class _HeadersTooLarge(Exception):
    """Raised in a parser callback: httptools turns it into ``HttpParserCallbackError`` (an
    ``HttpParserError``), which uvicorn answers with :meth:`send_400_response`, overridden
    below."""


def _problem(status: int, reason: str, title: str, detail: str) -> bytes:
    body = json.dumps(
        {"type": "about:blank", "title": title, "status": status, "detail": detail}
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "content-type: application/problem+json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    ).encode()
    return head + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with read deadlines and a cap on the size of headers."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: ConnectionLimits | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits or ConnectionLimits()
        self._phase = _Phase.HEADERS
        self._deadline: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        """Bytes received since the request began, while its headers are incomplete."""
        self._parsed_header_bytes = 0
        """Size of the request line and headers parsed so far."""
        self._headers_too_large = False

    # --- deadlines -------------------------------------------------------------------------

    def _arm(self, phase: _Phase) -> None:
        self._disarm()
        self._phase = phase
        if phase is _Phase.HEADERS:
            self._header_bytes = self._parsed_header_bytes = 0
            seconds = self.limits.header_timeout_seconds
        elif phase is _Phase.BODY:
            seconds = self.limits.body_timeout_seconds
        else:
            return
        self._deadline = self.loop.call_later(seconds, self._timed_out, phase)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _timed_out(self, phase: _Phase) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        what = "request headers" if phase is _Phase.HEADERS else "request body"
        seconds = (
            self.limits.header_timeout_seconds
            if phase is _Phase.HEADERS
            else self.limits.body_timeout_seconds
        )
        log.warning(
            "connection closed: request too slow",
            phase=phase.value,
            timeout_seconds=seconds,
        )
        self._refuse(
            _problem(
                408,
                "Request Timeout",
                "Request timeout",
                f"the {what} did not arrive within {seconds:g} seconds",
            )
        )

    def _refuse(self, response: bytes) -> None:
        """Answer ``response`` unless this request has been answered or another answer is on
        its way, then close the connection."""
        cycle = self.cycle
        answered = False
        if cycle is not None:
            if self._phase is _Phase.BODY:
                # The application is reading this body: it now sees a disconnect, and what it
                # sends is dropped. It may have answered already (before reading the body).
                answered = cycle.response_started
            else:
                # A previous request still being answered (pipelining) is cut off.
                answered = not cycle.response_complete
            if not cycle.response_complete:
                cycle.disconnected = True
                cycle.message_event.set()
        if not answered:
            self.transport.write(response)
        self.transport.close()

    # --- uvicorn's protocol, extended --------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(_Phase.HEADERS)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._phase is _Phase.IDLE:
            self._arm(_Phase.HEADERS)
        if self._phase is _Phase.HEADERS:
            self._header_bytes += len(data)
        super().data_received(data)
        if (
            self._phase is _Phase.HEADERS
            and self._header_bytes > self.limits.headers_max_bytes
            and not self.transport.is_closing()
        ):
            self._refuse_headers()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._phase is not _Phase.HEADERS:
            self._arm(_Phase.HEADERS)

    def on_url(self, url: bytes) -> None:
        self._count_header(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_header(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._arm(_Phase.BODY)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._arm(_Phase.IDLE)
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        if self._headers_too_large:
            self._refuse_headers()
        else:
            super().send_400_response(msg)

    # --- header size -------------------------------------------------------------------------

    def _count_header(self, size: int) -> None:
        self._parsed_header_bytes += size
        if self._parsed_header_bytes > self.limits.headers_max_bytes:
            self._headers_too_large = True
            raise _HeadersTooLarge

    def _refuse_headers(self) -> None:
        self._disarm()
        limit = self.limits.headers_max_bytes
        log.warning("connection closed: request headers too large", limit_bytes=limit)
        self._refuse(
            _problem(
                431,
                "Request Header Fields Too Large",
                "Request header fields too large",
                f"the request line and headers are larger than {limit} bytes",
            )
        )


def server_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` that every ``broker serve`` process uses."""
    return {
        "http": functools.partial(
            GuardedHttpToolsProtocol, limits=ConnectionLimits.from_settings(settings)
        ),
        "timeout_keep_alive": 5,
        "log_config": None,
        "access_log": False,
        "server_header": False,
    }
