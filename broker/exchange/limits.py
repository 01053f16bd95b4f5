"""Rate limits: requests per client (token bucket, per process) and verification answers per
record at the source (in the database, so the limits hold across processes).

With several server processes (``broker serve --workers N``) each process's bucket holds its
share of the client's rate and burst (divided by N, at least one request), so the configured
rate is a ceiling across processes. A client on one keep-alive connection stays on one process
and so sees rate/N: conservative, and no shared state or database write per request.

The verification limits stop callers from finding an address by asking one postcode at a time:
a few answers per record a day, whatever their answers, counted by the record's stable key at the
source (so a UPRN and its council tax account, in any case, share one count) across every party
and flow, and a share of those per party, flow and record. They replace a count per client and
subject identifier, which another party or another identifier of the record started afresh.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, delete, func, insert, select, text

from broker.core.errors import TooManyRequests
from broker.exchange.ports import VerificationAnswer
from broker.exchange.tables import verification_answers


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
