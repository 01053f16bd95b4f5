"""Rate limits: requests per client (:pypi:`limits`, in Redis across instances or in each
process's memory) and verification answers per record at the source (in the database, so the
limits hold across processes).

A client may make ``rate`` requests a second with bursts of up to ``burst`` at once: at most
``capacity = max(burst, rate)`` requests in any window of ``capacity / rate`` seconds (a moving
window, rounded to whole seconds; the window's start moves with every request).

With ``redis_url`` set, every instance and process counts in Redis (one Lua script per request),
so the limit is exact across all of them. Redis unreachable: :class:`LimiterUnavailable` (503
with ``Retry-After``; ``/readyz`` not ready), never unlimited. Without Redis each process counts
in its own memory and allows its share (capacity divided by the processes of ``broker serve
--workers N``, at least one request): a ceiling across one instance's processes, while each of
several instances behind a load balancer allows the whole rate.

The verification limits stop callers from finding an address by asking one postcode at a time:
a few answers per record a day, whatever their answers, counted by the record's stable key at the
source (so a UPRN and its council tax account, in any case, share one count) across every party
and flow, and a share of those per party, flow and record. They replace a count per client and
subject identifier, which another party or another identifier of the record started afresh.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import Connection, Engine, delete, func, insert, select, text

from broker.core.errors import TooManyRequests, Unavailable
from broker.exchange.ports import VerificationAnswer
from broker.exchange.tables import verification_answers

#: How long a call to Redis may take before the limiter answers 503 (connect and each read).
REDIS_TIMEOUT_SECONDS = 0.5
#: What a 503 of an unreachable Redis asks the client to wait.
UNAVAILABLE_RETRY_SECONDS = 5


class RateLimited(TooManyRequests):
    """Over a limit: 429 with ``retry_after_seconds``. Counted, never logged as an exchange."""

    def __init__(self, detail: str, retry_after_seconds: int) -> None:
        super().__init__(detail, retry_after_seconds)


class LimiterUnavailable(Unavailable):
    """The shared count (Redis) cannot be reached: 503 with ``Retry-After``, never unlimited."""

    def __init__(self) -> None:
        super().__init__("the rate limit store is unreachable: try again shortly")
        self.retry_after_seconds = UNAVAILABLE_RETRY_SECONDS


def redis_location(url: str) -> str:
    """``host:port`` of a Redis URL, for messages (never its password)."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"


class ClientRateLimiter:
    """Per-client limits: ``rate_per_second`` sustained, ``burst`` at once (``overrides``: a
    rate per client id). ``redis_url``: counted in Redis, exact across every process holding
    such a limiter; else in memory, each of ``processes`` processes allowing its share."""

    def __init__(
        self,
        rate_per_second: float,
        burst: int,
        overrides: Mapping[str, float],
        *,
        processes: int = 1,
        redis_url: str | None = None,
        key_prefix: str = "isa-broker-rate",
    ) -> None:
        if processes < 1:
            raise ValueError("processes must be at least 1")
        self._rate = rate_per_second
        self._burst = burst
        self._overrides = dict(overrides)
        self._processes = 1 if redis_url else processes
        self._redis_url = redis_url
        storage: Storage
        if redis_url:
            storage = RedisStorage(
                redis_url,
                key_prefix=key_prefix,
                wrap_exceptions=True,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
            )
        else:
            storage = MemoryStorage()
        self._storage = storage
        self._limiter = MovingWindowRateLimiter(storage)
        self._items: dict[str, RateLimitItem] = {}

    @property
    def shared(self) -> bool:
        """True when counted in Redis (a network call: run it off the event loop)."""
        return self._redis_url is not None

    def rate_for(self, client_id: str) -> float:
        """The client's configured rate (requests per second, all processes together)."""
        return self._overrides.get(client_id, self._rate)

    def item_for(self, client_id: str) -> RateLimitItem:
        """This process's limit for the client: at most ``amount`` in ``window`` seconds."""
        item = self._items.get(client_id)
        if item is None:
            rate = self.rate_for(client_id)
            capacity = max(float(self._burst), rate)
            window = max(1, round(capacity / rate))
            amount = max(1, math.floor(rate * window / self._processes))
            item = self._items[client_id] = RateLimitItemPerSecond(amount, window)
        return item

    def take(self, client_id: str) -> None:
        """Count one request or raise :class:`RateLimited` (:class:`LimiterUnavailable` when
        Redis cannot be reached)."""
        item = self.item_for(client_id)
        try:
            if self._limiter.hit(item, client_id):
                return
            reset = self._limiter.get_window_stats(item, client_id).reset_time
        except StorageError as e:
            raise LimiterUnavailable() from e
        raise RateLimited(
            f"more than {self.rate_for(client_id):g} requests per second from this client",
            max(1, math.ceil(reset - time.time())),
        )

    def readiness(self) -> str | None:
        """None when the count can be kept (always, in memory), else why not."""
        if self._redis_url is None:
            return None
        try:
            reachable = self._storage.check()
        except Exception:  # any driver error: not reachable
            reachable = False
        return (
            None
            if reachable
            else f"rate limit store (Redis at {redis_location(self._redis_url)}) unreachable"
        )


class VerificationLimiter:
    """At most ``per_record`` answers about one record (its dataset and stable key at the
    source) in ``window_seconds`` across every party and flow, and at most ``per_flow`` of those
    to one party under one flow. Both are counted in one transaction, serialised per record."""

    def __init__(self, engine: Engine, *, per_record: int, per_flow: int, window_seconds: int):
        self._engine = engine
        self._per_record = per_record
        self._per_flow = per_flow
        self._window_ms = window_seconds * 1000

    def take(self, answer: VerificationAnswer, now_ms: int) -> None:
        """Count one answer, or raise :class:`VerificationLimited` (nothing counted) when
        either window is full."""
        c = verification_answers.c
        since = now_ms - self._window_ms
        record = (c.dataset == answer.dataset, c.record_pseudonym.in_(answer.records))
        flow = (
            c.party_id == answer.party_id,
            c.agreement_id == answer.agreement_id,
            c.flow_id == answer.flow_id,
        )
        with self._engine.begin() as conn:
            _lock_record(conn, answer)
            conn.execute(delete(verification_answers).where(c.at_ms < since - self._window_ms))
            for name, where, limit in (
                ("per_record", record, self._per_record),
                ("per_party_flow_record", (*record, *flow), self._per_flow),
            ):
                count, oldest = conn.execute(
                    select(func.count(), func.min(c.at_ms)).where(*where, c.at_ms >= since)
                ).one()
                if count >= limit:
                    retry = max(
                        1, math.ceil(((oldest or now_ms) + self._window_ms - now_ms) / 1000)
                    )
                    raise VerificationLimited(name, limit, self._window_ms, retry)
            conn.execute(
                insert(verification_answers).values(
                    dataset=answer.dataset,
                    record_pseudonym=answer.records[0],
                    party_id=answer.party_id,
                    agreement_id=answer.agreement_id,
                    flow_id=answer.flow_id,
                    client_id=answer.client_id,
                    at_ms=now_ms,
                )
            )


class VerificationLimited(RateLimited):
    """Over a verification limit; ``limit`` names which (``per_record`` across every party and
    flow, or ``per_party_flow_record``)."""

    def __init__(self, limit: str, count: int, window_ms: int, retry_after_seconds: int) -> None:
        hours = window_ms // 3_600_000 or 1
        scope = (
            "about this record, whichever identifier is used and whoever asks"
            if limit == "per_record"
            else "about this record to this party under this flow"
        )
        super().__init__(
            f"at most {count} verification answers {scope} in {hours} hours", retry_after_seconds
        )
        self.limit = limit
        self.with_extra(limit=limit)


def _lock_record(conn: Connection, answer: VerificationAnswer) -> None:
    """Serialise the count and insert per record: PostgreSQL takes a transaction-scoped advisory
    lock on the record; SQLite takes the database's write lock now (one writer at a time)."""
    if conn.dialect.name == "postgresql":
        digest = hashlib.sha256(f"{answer.dataset}\x00{answer.records[0]}".encode()).digest()
        conn.execute(
            text("SELECT pg_advisory_xact_lock(:k)"),
            {"k": int.from_bytes(digest[:8], "big", signed=True)},
        )
    elif conn.dialect.name == "sqlite":
        # Any write takes SQLite's write lock until the commit; this one changes nothing.
        conn.execute(delete(verification_answers).where(verification_answers.c.id < 0))
