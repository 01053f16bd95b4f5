"""The per-client token bucket, alone and as one of several server processes."""

from __future__ import annotations

import pytest

from broker.exchange.limits import ClientRateLimiter, RateLimited


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


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
    ("processes", "burst_share", "in_three_seconds"),
    [(1, 10, 6), (2, 5, 3), (3, 3, 2), (40, 1, 0)],
    ids=["one-process", "two-processes", "three-processes", "more-processes-than-burst"],
)
def test_each_process_allows_its_share_of_rate_and_burst(
    processes: int, burst_share: int, in_three_seconds: int
) -> None:
    clock = FakeClock()
    limiter = ClientRateLimiter(2.0, 10, {}, clock, processes=processes)  # 2/s, burst 10
    assert allowed(limiter, "c1", 50) == burst_share
    clock.now += 3
    assert allowed(limiter, "c1", 50) == in_three_seconds


def test_overrides_are_shared_out_too_and_named_whole_in_the_refusal() -> None:
    clock = FakeClock()
    limiter = ClientRateLimiter(1.0, 1, {"bench": 300.0}, clock, processes=2)
    assert limiter.share_for("bench") == (150.0, 150.0)
    assert allowed(limiter, "bench", 400) == 150
    with pytest.raises(RateLimited, match="more than 300 requests per second") as refused:
        limiter.take("bench")
    assert refused.value.retry_after_seconds == 1


def test_processes_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ClientRateLimiter(1.0, 1, {}, FakeClock(), processes=0)
