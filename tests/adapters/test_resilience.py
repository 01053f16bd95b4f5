"""The circuit breaker state machine and bounded retries (no I/O)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.bindings import BreakerPolicy, RetryPolicy
from adapters.errors import (
    CircuitOpen,
    SourceBadData,
    SourceError,
    SourceTimeout,
    SourceUnavailable,
    SubjectNotFound,
)
from adapters.resilience import BreakerState, CircuitBreaker, backoff_seconds, call_resiliently
from tests.adapters.conftest import FakeClock

NO_WAIT = RetryPolicy(max_attempts=3, backoff_base_seconds=0, backoff_max_seconds=0)


def state_of(b: CircuitBreaker) -> BreakerState:
    """The breaker's state, read fresh (a property mypy would otherwise narrow)."""
    return b.state


async def _no_sleep(_seconds: float) -> None:
    return None


class Script:
    """An attempt that raises the scripted errors in turn, then answers."""

    def __init__(self, *errors: SourceError) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "answer"


def breaker(clock: FakeClock, threshold: int = 2) -> CircuitBreaker:
    return CircuitBreaker(
        "s", BreakerPolicy(failure_threshold=threshold, reset_timeout_seconds=5), clock
    )


@pytest.mark.parametrize(
    ("errors", "calls", "outcome"),
    [
        pytest.param([SourceUnavailable("x")], 2, "answer", id="one-500-then-answer"),
        pytest.param([SourceUnavailable("x")] * 3, 3, SourceUnavailable, id="gives-up-after-3"),
        pytest.param([SourceTimeout("x")], 1, SourceTimeout, id="timeout-not-retried"),
        pytest.param([SourceBadData("x")], 1, SourceBadData, id="bad-data-not-retried"),
        pytest.param([SubjectNotFound("x")], 1, SubjectNotFound, id="not-found-not-retried"),
    ],
)
async def test_retries(errors: list[SourceError], calls: int, outcome: object) -> None:
    attempt = Script(*errors)
    b = breaker(FakeClock(), threshold=10)
    if outcome == "answer":
        assert await call_resiliently(attempt, retry=NO_WAIT, breaker=b, sleep=_no_sleep) == outcome
    else:
        assert isinstance(outcome, type)
        with pytest.raises(outcome):
            await call_resiliently(attempt, retry=NO_WAIT, breaker=b, sleep=_no_sleep)
    assert attempt.calls == calls


def test_breaker_cycle() -> None:
    clock = FakeClock()
    b = breaker(clock)
    b.before_call()
    b.on_failure()
    assert state_of(b) is BreakerState.CLOSED
    b.on_failure()
    assert state_of(b) is BreakerState.OPEN
    with pytest.raises(CircuitOpen, match="circuit open"):
        b.before_call()
    clock.advance(5)
    assert state_of(b) is BreakerState.HALF_OPEN
    b.before_call()  # the one trial
    with pytest.raises(CircuitOpen, match="circuit open"):
        b.before_call()  # a second caller waits for the trial
    b.on_success()
    assert state_of(b) is BreakerState.CLOSED


def test_failed_trial_reopens_for_a_full_period() -> None:
    clock = FakeClock()
    b = breaker(clock, threshold=1)
    b.on_failure()
    clock.advance(5)
    b.before_call()
    b.on_failure()
    clock.advance(4.9)
    assert state_of(b) is BreakerState.OPEN


def test_not_found_does_not_count_against_the_source() -> None:
    b = breaker(FakeClock(), threshold=2)
    b.on_failure()
    b.on_neutral()
    b.on_failure()
    assert state_of(b) is BreakerState.CLOSED


@settings(max_examples=100)
@given(st.integers(1, 10), st.floats(0, 2), st.floats(0, 5), st.integers(0, 2**32))
def test_backoff_is_bounded(retry: int, base: float, cap: float, seed: int) -> None:
    policy = RetryPolicy(max_attempts=3, backoff_base_seconds=base, backoff_max_seconds=cap)
    wait = backoff_seconds(policy, retry, random.Random(seed))
    assert 0 <= wait <= min(cap, base * 2 ** (retry - 1))
