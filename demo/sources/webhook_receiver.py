"""The council children's services system's webhook endpoint, for the demo and tests.

A small aiohttp app on loopback that receives the broker's provider notifications (e.g. "a
hospital's emergency department checked this child's child protection record"), checks each
signature with :func:`broker.notify.signing.verify_webhook`, keeps what it received, and shows it:

- ``POST /webhooks/broker``: 204 for a verified delivery (200 for a duplicate ``webhook-id``,
  kept once), 401 for a bad signature (counted in ``rejected``);
- ``GET /received``: ``{"received": [...], "rejected": N}``, each item the verified event as sent
  plus ``received_at`` (what the README tour shows).

``answer_with`` lets a test make the next deliveries fail (e.g. ``[500, 500]``); ``connections``
counts the TCP connections deliveries came on (fewer than ``attempts`` when kept alive).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from broker.notify.signing import WebhookSignatureError, new_secret, verify_webhook

PATH = "/webhooks/broker"


@dataclass
class DemoWebhookReceiver:
    """What the receiver holds; shared between its handlers and a test or the demo."""

    secret: str = field(default_factory=new_secret, repr=False)
    received: list[dict[str, Any]] = field(default_factory=list)
    rejected: int = 0
    attempts: int = 0
    answer_with: list[int] = field(default_factory=list)
    """Statuses to answer the next deliveries with, before verifying (fault injection)."""
    retry_after: str | None = None
    """A ``Retry-After`` header for those answers."""
    url: str = ""
    """Set once served: the full webhook URL to register."""
    _seen: set[str] = field(default_factory=set, repr=False)
    _peers: set[object] = field(default_factory=set, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.received)

    @property
    def connections(self) -> int:
        """Distinct client connections (address and port) that deliveries came on."""
        with self._lock:
            return len(self._peers)

    def app(self) -> web.Application:
        async def receive(request: web.Request) -> web.Response:
            body = await request.read()
            peer = (
                None if request.transport is None else request.transport.get_extra_info("peername")
            )
            with self._lock:
                self.attempts += 1
                self._peers.add(peer)
                if self.answer_with:
                    headers = {"Retry-After": self.retry_after} if self.retry_after else None
                    return web.Response(status=self.answer_with.pop(0), headers=headers)
            try:
                msg_id = verify_webhook(self.secret, request.headers, body, now=time.time())
            except WebhookSignatureError as e:
                with self._lock:
                    self.rejected += 1
                return web.json_response({"error": str(e)}, status=401)
            with self._lock:
                if msg_id in self._seen:
                    return web.Response(status=200, text="duplicate")
                self._seen.add(msg_id)
                event = json.loads(body)
                event["received_at"] = datetime.now(UTC).isoformat(timespec="milliseconds")
                self.received.append(event)
            return web.Response(status=204)

        async def received(_request: web.Request) -> web.Response:
            with self._lock:
                return web.json_response({"received": self.received, "rejected": self.rejected})

        app = web.Application(client_max_size=1 << 20)
        app.router.add_post(PATH, receive)
        app.router.add_get("/received", received)
        return app
