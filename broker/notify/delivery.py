"""The delivery worker: posts due outbox rows to providers' webhooks, with retries and backoff.

It runs as one asyncio task in the gateway's event loop (started in the app lifespan). Database
calls go to worker threads (``asyncio.to_thread``) and HTTP is ``httpx.AsyncClient``, so it never
blocks the loop. State lives only in the ``outbox`` table: a restart picks up where it stopped.

Each attempt: the party's active webhook (none: the attempt fails and is retried, so a
notification waits for a registration rather than being dropped), a body of canonical JSON, the
Standard Webhooks signature headers (:mod:`broker.notify.signing`), no redirects followed. A 2xx
answer marks the row delivered; anything else (status, timeout, refused connection) is retried
after :func:`broker.notify.outbox.backoff_seconds` (at least the provider's ``Retry-After``) until
``max_attempts``, then the row is marked failed with its last error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import structlog

from broker.notify.outbox import OutboxRow, OutboxStore, Outcome, backoff_seconds
from broker.notify.sealing import SealingError, SubjectSealer
from broker.notify.signing import sign_headers
from broker.notify.webhooks import Webhook, WebhookRegistry

log = structlog.get_logger("broker.notify")

USER_AGENT = "information-sharing-broker-webhooks/1"


@dataclass(frozen=True)
class DeliveryPolicy:
    """How hard the worker tries. Units are in the names."""

    max_attempts: int = 12
    backoff_base_seconds: float = 5.0
    backoff_max_seconds: float = 3600.0
    timeout_seconds: float = 5.0
    poll_seconds: float = 1.0
    lease_seconds: float = 60.0
    """A claimed row is not taken by another process for this long (longer than a timeout)."""
    batch: int = 50


class _GiveUp(Exception):
    """An attempt that retrying cannot fix."""


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("retry-after", "0")))
    except ValueError:
        return 0.0


class DeliveryWorker:
    """Delivers the outbox. :meth:`run_forever` for the app, :meth:`run_once` for tests."""

    def __init__(
        self,
        store: OutboxStore,
        registry: WebhookRegistry,
        policy: DeliveryPolicy | None = None,
        *,
        sealer: SubjectSealer | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.policy = policy or DeliveryPolicy()
        self._sealer = sealer
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not a secret
        self._transport = transport
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=self.policy.timeout_seconds,
            follow_redirects=False,
            transport=self._transport,
            headers={"user-agent": USER_AGENT},
        )

    def wake(self) -> None:
        """Look for due rows now (callable from any thread, e.g. after an audit commit)."""
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run_forever(self) -> None:
        """Deliver until cancelled; errors of one cycle are logged and the next cycle runs."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        async with self._client() as client:
            while True:
                try:
                    handled = await self._cycle(client)
                except Exception as e:  # the database may be down: try again next cycle
                    log.error("outbox cycle failed", error=type(e).__name__, detail=str(e))
                    handled = 0
                if handled >= self.policy.batch:
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.policy.poll_seconds)
                self._wake.clear()

    async def run_once(self) -> int:
        """One cycle: claim due rows and attempt each; how many were attempted."""
        async with self._client() as client:
            return await self._cycle(client)

    async def _cycle(self, client: httpx.AsyncClient) -> int:
        now_ms = int(self._clock() * 1000)
        rows = await asyncio.to_thread(
            self.store.claim_due,
            now_ms,
            limit=self.policy.batch,
            lease_ms=int(self.policy.lease_seconds * 1000),
        )
        if not rows:
            return 0
        hooks = await asyncio.to_thread(self._webhooks, {r.party_id for r in rows})
        outcomes = await asyncio.gather(
            *(self._attempt(client, row, hooks.get(row.party_id)) for row in rows)
        )
        # One commit for the whole cycle: the outbox shares the audit log's database.
        await asyncio.to_thread(self.store.record, outcomes)
        return len(rows)

    def _webhooks(self, parties: set[str]) -> dict[str, Webhook]:
        found = self.registry.for_parties(parties)  # one query for the cycle
        return {p: h for p, h in found.items() if h.active}

    def _body(self, row: OutboxRow) -> bytes:
        data: dict[str, Any] = dict(row.payload)
        if row.subject_sealed is not None:
            if self._sealer is None or row.subject_key_version is None:
                raise _GiveUp("the row holds a sealed identifier but no sealer is configured")
            try:
                subject = self._sealer.open(row.subject_sealed, row.subject_key_version, row.id)
            except SealingError as e:
                raise _GiveUp(str(e)) from e
            data["subject"] = {"type": subject.type, "value": subject.value}
        envelope = {
            "id": row.id,
            "type": row.event_type,
            "timestamp": _iso(row.created_ms),
            "data": data,
        }
        return json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode()

    async def _attempt(
        self, client: httpx.AsyncClient, row: OutboxRow, hook: Webhook | None
    ) -> Outcome:
        retry_after = 0.0
        try:
            if hook is None:
                raise RuntimeError(f"no active webhook registered for {row.party_id}")
            body = self._body(row)
            headers = sign_headers(hook.secret, row.id, int(self._clock()), body)
            headers["content-type"] = "application/json"
            # Streamed and never read: a receiver's answer body is of no interest, at any size.
            async with client.stream("POST", hook.url, content=body, headers=headers) as response:
                status = response.status_code
                retry_after = _retry_after(response)
            if 200 <= status < 300:
                log.debug("notification delivered", id=row.id, party=row.party_id)
                return Outcome(row.id, delivered_ms=int(self._clock() * 1000))
            error = f"HTTP {status} from the webhook"
        except _GiveUp as e:
            log.error("notification given up", id=row.id, party=row.party_id, error=str(e))
            return Outcome(row.id, error=str(e))
        except (httpx.HTTPError, RuntimeError) as e:
            error = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        attempts = row.attempts + 1
        next_ms: int | None = None
        if attempts < self.policy.max_attempts:
            delay = backoff_seconds(
                attempts,
                base_seconds=self.policy.backoff_base_seconds,
                max_seconds=self.policy.backoff_max_seconds,
                rng=self._rng,
            )
            delay = max(delay, min(retry_after, self.policy.backoff_max_seconds))
            next_ms = int((self._clock() + delay) * 1000)
        log.warning(
            "notification attempt failed",
            id=row.id,
            party=row.party_id,
            attempts=attempts,
            gave_up=next_ms is None,
            error=error,
        )
        return Outcome(row.id, error=error, next_attempt_ms=next_ms)
