"""Resilience around one source: a circuit breaker and bounded retries with backoff.

The breaker is a small state machine over an injected clock (no I/O):

* closed: calls pass; ``failure_threshold`` consecutive failures open it;
* open: calls are refused with :class:`CircuitOpen` until ``reset_timeout_seconds`` have passed;
* half-open: one trial call passes (others are refused); success closes, failure re-opens.

Only failures that say the source is unhealthy count (unavailable, timeout, bad data); "not
found" and the wrong-person guard are answers, not failures.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import TypeVar

from adapters.bindings import BreakerPolicy, RetryPolicy
from adapters.errors import SOURCE_FAILURES, CircuitOpen, SourceUnavailable

T = TypeVar("T")
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitBreaker:
    """One breaker per source system (see module docstring)."""

    def __init__(self, source: str, policy: BreakerPolicy, clock: Clock = time.monotonic) -> None:
        self.source = source
        self._policy = policy
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self._policy.reset_timeout_seconds:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def before_call(self) -> None:
        """Refuse with :class:`CircuitOpen` unless a call may go to the source now."""
        state = self.state
        if state is BreakerState.CLOSED:
            return
        if state is BreakerState.HALF_OPEN and not self._trial_in_flight:
            self._trial_in_flight = True
            return
        raise CircuitOpen(f"circuit open for source {self.source}", source=self.source)

    def on_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._trial_in_flight = False

    def on_failure(self) -> None:
        self._trial_in_flight = False
        if self._opened_at is not None:
            # A failed trial (or a late failure while open) re-opens for a full reset period.
            self._opened_at = self._clock()
            return
        self._failures += 1
        if self._failures >= self._policy.failure_threshold:
            self._opened_at = self._clock()

    def on_neutral(self) -> None:
        """The source answered (not found, wrong person): healthy, but not a success to count."""
        self.on_success()


def backoff_seconds(policy: RetryPolicy, retry_number: int, rng: random.Random) -> float:
    """Full-jitter exponential backoff before retry ``retry_number`` (1-based), capped."""
    ceiling = min(policy.backoff_max_seconds, policy.backoff_base_seconds * 2 ** (retry_number - 1))
    return rng.uniform(0, ceiling)


async def call_resiliently(
    attempt: Callable[[], Awaitable[T]],
    *,
    retry: RetryPolicy,
    breaker: CircuitBreaker,
    sleep: Sleep = asyncio.sleep,
    rng: random.Random | None = None,
) -> T:
    """Run ``attempt`` through ``breaker``, retrying :class:`SourceUnavailable` (not a timeout,
    not bad data) up to ``retry.max_attempts`` times in all. Only for idempotent reads.

    Raises the last attempt's error, or :class:`CircuitOpen` when the breaker refuses.
    """
    chooser = rng or random.Random()  # noqa: S311 (jitter, not security)
    number = 0
    while True:
        number += 1
        breaker.before_call()
        try:
            result = await attempt()
        except SOURCE_FAILURES as e:
            breaker.on_failure()
            if not isinstance(e, SourceUnavailable) or number >= retry.max_attempts:
                raise
        except BaseException:
            breaker.on_neutral()
            raise
        else:
            breaker.on_success()
            return result
        await sleep(backoff_seconds(retry, number, chooser))
