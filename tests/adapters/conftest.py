"""Shared fixtures: the demo sources, started once per session on loopback ports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from adapters.bindings import BindingSet, BreakerPolicy, RetryPolicy, Timeouts
from adapters.resilience import Clock
from adapters.sources import Sources
from demo.sources.runtime import DemoSources, start_demo_sources


@pytest.fixture(scope="session")
def demo() -> Iterator[DemoSources]:
    with start_demo_sources() as sources:
        yield sources


@pytest.fixture(autouse=True)
def _no_faults_left(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "demo" in request.fixturenames:
        running: DemoSources = request.getfixturevalue("demo")
        running.fhir_faults.clear()
        running.police_faults.clear()


@asynccontextmanager
async def open_sources(bindings: BindingSet, **kwargs: Any) -> AsyncIterator[Sources]:
    sources = Sources(bindings, **kwargs)
    try:
        yield sources
    finally:
        await sources.aclose()


def tight(
    bindings: BindingSet,
    source: str,
    *,
    read_seconds: float = 0.3,
    attempts: int = 3,
    threshold: int = 50,
    reset_seconds: float = 30.0,
) -> BindingSet:
    """``bindings`` with small timeouts/backoff on ``source`` so fault tests are quick."""
    return bindings.with_source(
        source,
        timeouts=Timeouts(connect_seconds=0.5, read_seconds=read_seconds),
        retries=RetryPolicy(
            max_attempts=attempts, backoff_base_seconds=0.01, backoff_max_seconds=0.02
        ),
        breaker=BreakerPolicy(failure_threshold=threshold, reset_timeout_seconds=reset_seconds),
    )


class FakeClock:
    """A monotonic clock the test moves by hand (for the circuit breaker)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def as_clock(clock: FakeClock) -> Clock:
    return clock
