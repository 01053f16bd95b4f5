"""Rate limits: requests per client (token bucket, per process) and verification questions per
client and subject (in the database, so the limit holds across processes).

With several server processes (``broker serve --workers N``) each process's bucket holds its
share of the client's rate and burst (divided by N, at least one request), so the configured
rate is a ceiling across processes. A client on one keep-alive connection stays on one process
and so sees rate/N: conservative, and no shared state or database write per request.

The second limit is what stops a caller from finding an address by asking one postcode at a
time: a few claim sets per subject per day, whatever their answers.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy import Engine, delete, func, insert, select

from broker.core.errors import TooManyRequests
from broker.exchange.tables import verification_attempts


class RateLimited(TooManyRequests):
    """Over a limit: 429 with ``retry_after_seconds``. Counted, never logged as an exchange."""

    def __init__(self, detail: str, retry_after_seconds: int) -> None:
        super().__init__(detail, retry_after_seconds)


@dataclass
class _Bucket:
    tokens: float
    updated: float


class ClientRateLimiter:
    """A token bucket per client: ``rate_per_second`` sustained, ``burst`` at once, across
    ``processes`` server processes that each hold one such limiter (each allows its share)."""

    def __init__(
        self,
        rate_per_second: float,
        burst: int,
        overrides: Mapping[str, float],
        clock: Callable[[], float],
        *,
        processes: int = 1,
    ) -> None:
        if processes < 1:
            raise ValueError("processes must be at least 1")
        self._rate = rate_per_second
        self._burst = burst
        self._overrides = dict(overrides)
        self._clock = clock
        self._processes = processes
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def rate_for(self, client_id: str) -> float:
        """The client's configured rate (requests per second, all processes together)."""
        return self._overrides.get(client_id, self._rate)

    def share_for(self, client_id: str) -> tuple[float, float]:
        """This process's share: (requests per second, bucket capacity in requests)."""
        rate = self.rate_for(client_id)
        capacity = max(float(self._burst), rate)
        return rate / self._processes, max(1.0, capacity / self._processes)

    def take(self, client_id: str) -> None:
        """Spend one token or raise :class:`RateLimited`."""
        rate, capacity = self.share_for(client_id)
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(client_id)
            if bucket is None:
                bucket = self._buckets[client_id] = _Bucket(capacity, now)
            bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return
            wait = (1 - bucket.tokens) / rate
        raise RateLimited(
            f"more than {self.rate_for(client_id):g} requests per second from this client",
            max(1, math.ceil(wait)),
        )


class VerificationLimiter:
    """At most ``limit`` verification requests per client and subject in ``window_seconds``."""

    def __init__(self, engine: Engine, limit: int, window_seconds: int) -> None:
        self._engine = engine
        self._limit = limit
        self._window_ms = window_seconds * 1000

    def take(self, client_id: str, subject_pseudonym: str, now_ms: int) -> None:
        """Record one attempt, or raise :class:`RateLimited` when the window is full."""
        c = verification_attempts.c
        since = now_ms - self._window_ms
        with self._engine.begin() as conn:
            conn.execute(delete(verification_attempts).where(c.at_ms < since - self._window_ms))
            count = conn.execute(
                select(func.count())
                .select_from(verification_attempts)
                .where(
                    c.client_id == client_id,
                    c.subject_pseudonym == subject_pseudonym,
                    c.at_ms >= since,
                )
            ).scalar_one()
            if count >= self._limit:
                oldest = conn.execute(
                    select(func.min(c.at_ms)).where(
                        c.client_id == client_id,
                        c.subject_pseudonym == subject_pseudonym,
                        c.at_ms >= since,
                    )
                ).scalar_one()
                retry = max(1, math.ceil(((oldest or now_ms) + self._window_ms - now_ms) / 1000))
                raise RateLimited(
                    f"at most {self._limit} verification requests per subject in "
                    f"{self._window_ms // 3_600_000 or 1} hours from this client",
                    retry,
                )
            conn.execute(
                insert(verification_attempts).values(
                    client_id=client_id, subject_pseudonym=subject_pseudonym, at_ms=now_ms
                )
            )
