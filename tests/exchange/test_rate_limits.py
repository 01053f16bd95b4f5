"""The per-client limit (a moving window, :pypi:`limits`), alone and as one of several server
processes counting in memory."""

from __future__ import annotations

import time

import pytest

from broker.exchange.limits import ClientRateLimiter, RateLimited


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The wall clock that limits' memory storage and the limiter read."""
    fake = FakeClock()
    monkeypatch.setattr(time, "time", fake)
    return fake


def allowed(limiter: ClientRateLimiter, client_id: str, attempts: int) -> int:
    passed = 0
    for _ in range(attempts):
        try:
            limiter.take(client_id)
        except RateLimited:
            continue
        passed += 1
    return passed


@pytest.mark.parametrize(
    ("processes", "share"),
    [(1, 10), (2, 5), (3, 3), (40, 1)],
    ids=["one-process", "two-processes", "three-processes", "more-processes-than-burst"],
)
def test_each_process_allows_its_share_of_the_window(
    clock: FakeClock, processes: int, share: int
) -> None:
    limiter = ClientRateLimiter(2.0, 10, {}, processes=processes)  # 2/s, burst 10: 10 in 5 s
    assert limiter.item_for("c1").get_expiry() == 5
    assert allowed(limiter, "c1", 50) == share
    clock.now += 3
    assert allowed(limiter, "c1", 50) == 0  # the window still holds them
    clock.now += 2.5
    assert allowed(limiter, "c1", 50) == share
    assert allowed(limiter, "c2", 50) == share  # each client has its own count


def test_overrides_are_shared_out_too_and_named_whole_in_the_refusal(clock: FakeClock) -> None:
    limiter = ClientRateLimiter(1.0, 1, {"bench": 300.0}, processes=2)
    assert limiter.item_for("bench").amount == 150
    assert allowed(limiter, "bench", 400) == 150
    with pytest.raises(RateLimited, match="more than 300 requests per second") as refused:
        limiter.take("bench")
    assert refused.value.retry_after_seconds == 1


def test_processes_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ClientRateLimiter(1.0, 1, {}, processes=0)
