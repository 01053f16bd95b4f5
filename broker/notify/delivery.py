"""The delivery worker: posts due outbox rows to providers' webhooks, with retries and backoff.

It runs as one asyncio task in the gateway's event loop (started in the app lifespan). Database
calls go to worker threads (anyio's ``to_thread.run_sync``, which a cancelled task waits out: a
stopping broker never disposes the engine under a call still holding a connection) and HTTP is
one long-lived ``aiohttp.ClientSession``, so it never blocks the loop. State lives only in the
``outbox`` table: a restart picks up where it stopped.

A cycle is one claim transaction (the due rows, up to ``batch``, and the parties' webhooks in one
query), the attempts concurrently, and one transaction recording every outcome. The outbox shares
the audit log's database, so each write transaction competes with the exchanges' audit commits
for the write lock: after a wake (the pipeline wakes the worker after each commit that queued a
notification) the worker waits ``coalesce_seconds`` before claiming, so that under load one cycle
takes the rows of many exchanges. A full batch starts the next cycle at once.

Each attempt: the party's active webhook (none: the attempt fails and is retried, so a
notification waits for a registration rather than being dropped), a body of canonical JSON, the
Standard Webhooks signature headers (:mod:`broker.notify.signing`), no redirects followed, no
cookies kept, no proxy or ``.netrc`` taken from the environment, and only to addresses the
outbound rule allows (:mod:`broker.outbound`: the session's resolver checks every address a name
resolves to and aiohttp connects to those; a literal address is checked before the request; a
refused address fails the attempt, retried in case the operator allow-lists it or the name
changes). A 2xx answer marks the row
delivered; anything else (status, timeout, refused connection) is retried after
:func:`broker.notify.outbox.backoff_seconds` (at least the provider's ``Retry-After``) until
``max_attempts``, then the row is marked failed with its last error. ``timeout_seconds`` bounds a
whole attempt, connecting included. At most :data:`ANSWER_BODY_MAX_BYTES` of an answer's body is
read, and only so that its connection can carry the next delivery (keep-alive); a longer body is
left unread and its connection closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import structlog
from anyio import to_thread

from broker.notify.outbox import OutboxRow, OutboxStore, Outcome, backoff_seconds
from broker.notify.sealing import SealingError, SubjectSealer
from broker.notify.signing import sign_headers
from broker.notify.webhooks import Webhook, WebhookRegistry
from broker.outbound import OutboundGuard, OutboundRefused

log = structlog.get_logger("broker.notify")

USER_AGENT = "information-sharing-broker-webhooks/1"

ANSWER_BODY_MAX_BYTES = 64 * 1024
"""At most this much of an answer's body (of no interest) is read, so that its connection can be
reused."""

IDLE_CONNECTION_SECONDS = 4.0
"""An idle keep-alive connection is closed after this long: under the 5 s after which common
servers close theirs, so that a connection is rarely reused just as the server closes it."""


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
    """Rows claimed per cycle, posted concurrently (each on its own connection)."""
    coalesce_seconds: float = 0.05
    """After a wake, wait this long before claiming (0: claim at once)."""


class _GiveUp(Exception):
    """An attempt that retrying cannot fix."""


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def _retry_after(headers: Mapping[str, str]) -> float:
    try:
        return max(0.0, float(headers.get("retry-after", "0")))
    except ValueError:
        return 0.0


async def _read_answer(response: aiohttp.ClientResponse) -> None:
    """Read and drop the answer's body, at most :data:`ANSWER_BODY_MAX_BYTES`. Once it is read to
    its end aiohttp reuses the connection; otherwise (longer, or failing) it closes it."""
    left = ANSWER_BODY_MAX_BYTES
    # The status is already known: a body that fails or times out changes nothing about it.
    with contextlib.suppress(aiohttp.ClientError, TimeoutError):
        while left > 0 and (chunk := await response.content.read(left)):
            left -= len(chunk)


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
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.store = store
        self.registry = registry
        self.policy = policy or DeliveryPolicy()
        self._sealer = sealer
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not a secret
        self._sleep = sleep
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def guard(self) -> OutboundGuard:
        """The outbound address rule: the registry's (checked at registration and here)."""
        return self.registry.guard

    def _session(self) -> aiohttp.ClientSession:
        """The connection pool of one run: a cycle's attempts never wait for a connection (the
        wait would count against their timeout), idle ones are kept for the next cycle. Names
        resolve through the outbound guard (every address checked)."""
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=self.policy.batch,
                keepalive_timeout=IDLE_CONNECTION_SECONDS,
                resolver=self.guard.aiohttp_resolver(),
            ),
            timeout=aiohttp.ClientTimeout(total=self.policy.timeout_seconds),
            headers={"User-Agent": USER_AGENT},
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            trust_env=False,
        )

    def wake(self) -> None:
        """Look for due rows after the coalescing window, not at the next poll (callable from
        any thread, e.g. after an audit commit)."""
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run_forever(self, may_run: Callable[[], bool] | None = None) -> None:
        """Deliver until cancelled; errors of one cycle are logged and the next cycle runs.
        ``may_run`` (blocking; the job's lease across instances): a cycle runs only when it
        answers True."""
        self._loop = asyncio.get_running_loop()
        self._wake = wake = asyncio.Event()
        async with self._session() as session:
            while True:
                try:
                    if may_run is None or await to_thread.run_sync(may_run):
                        handled = await self._cycle(session)
                    else:
                        handled = 0
                except Exception as e:  # the database may be down: try again next cycle
                    log.error("outbox cycle failed", error=type(e).__name__, detail=str(e))
                    handled = 0
                if handled >= self.policy.batch:
                    continue
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
                # cancellation that arrives with a wake, and the app's shutdown would hang.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.policy.poll_seconds):
                        await wake.wait()
                if wake.is_set() and self.policy.coalesce_seconds > 0:
                    await self._sleep(self.policy.coalesce_seconds)
                # Cleared after the window: the rows of wakes during it are committed already.
                wake.clear()

    async def run_once(self) -> int:
        """One cycle: claim due rows and attempt each; how many were attempted."""
        async with self._session() as session:
            return await self._cycle(session)

    async def _cycle(self, session: aiohttp.ClientSession) -> int:
        rows, hooks = await to_thread.run_sync(self._claim, int(self._clock() * 1000))
        if not rows:
            return 0
        outcomes = await asyncio.gather(
            *(self._attempt(session, row, hooks.get(row.party_id)) for row in rows)
        )
        # One commit for the whole cycle: the outbox shares the audit log's database.
        await to_thread.run_sync(self.store.record, outcomes)
        return len(rows)

    def _claim(self, now_ms: int) -> tuple[list[OutboxRow], dict[str, Webhook]]:
        """The due rows (claimed) and their parties' active webhooks: one hop to a thread."""
        rows = self.store.claim_due(
            now_ms, limit=self.policy.batch, lease_ms=int(self.policy.lease_seconds * 1000)
        )
        if not rows:
            return [], {}
        found = self.registry.for_parties({r.party_id for r in rows})
        return rows, {p: h for p, h in found.items() if h.active}

    def _body(self, row: OutboxRow) -> bytes:
        data: dict[str, Any] = dict(row.payload)
        # Rows queued before notices stopped carrying it: the broker's pseudonym is never sent.
        data.pop("subject_pseudonym", None)
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
        self, session: aiohttp.ClientSession, row: OutboxRow, hook: Webhook | None
    ) -> Outcome:
        retry_after = 0.0
        try:
            if hook is None:
                raise RuntimeError(f"no active webhook registered for {row.party_id}")
            self.guard.check_literal(hook.url)  # aiohttp resolves names only through the guard
            body = self._body(row)
            headers = sign_headers(hook.secret, row.id, int(self._clock()), body)
            headers["content-type"] = "application/json"
            async with session.post(
                hook.url, data=body, headers=headers, allow_redirects=False
            ) as response:
                status = response.status
                retry_after = _retry_after(response.headers)
                await _read_answer(response)
            if 200 <= status < 300:
                log.debug("notification delivered", id=row.id, party=row.party_id)
                return Outcome(row.id, delivered_ms=int(self._clock() * 1000))
            error = f"HTTP {status} from the webhook"
        except _GiveUp as e:
            log.error("notification given up", id=row.id, party=row.party_id, error=str(e))
            return Outcome(row.id, error=str(e))
        except OutboundRefused as e:
            error = f"refused address: {e}"
        except aiohttp.ClientConnectorError as e:  # the guard's resolver refused, or no answer
            refused = e.os_error if isinstance(e.os_error, OutboundRefused) else e.__cause__
            if isinstance(refused, OutboundRefused):
                error = f"refused address: {refused}"
            else:
                error = f"{type(e).__name__}: {e}"
        except (aiohttp.ClientError, TimeoutError, RuntimeError) as e:
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
