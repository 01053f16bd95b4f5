"""Per-client limits shared across instances through Redis (``BROKER_REDIS_URL``): exact across
them; Redis unreachable means 503 with ``Retry-After`` and not ready, never unlimited."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.container import Services, build_services
from broker.exchange.limits import ClientRateLimiter, LimiterUnavailable, RateLimited
from tests.exchange.helpers import post, safeguarding
from tests.support import LiveBroker, free_port, make_settings

REDIS_URL = "redis://127.0.0.1:6379/15"


def _redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


needs_redis = pytest.mark.skipif(
    not _redis_answers(), reason="no Redis answers on 127.0.0.1:6379 (the deploy files run one)"
)


def _allowed(limiter: ClientRateLimiter, client_id: str) -> bool:
    try:
        limiter.take(client_id)
    except RateLimited:
        return False
    return True


@pytest.fixture
def two_instances(tmp_path: Path) -> Iterator[tuple[Services, Services]]:
    """Two instances' services on one database and one Redis. Each says three processes: in
    memory each would allow a third (6 + 6); through Redis they share the whole limit."""
    database = f"sqlite:///{tmp_path / 'broker.db'}"
    first = make_settings(
        tmp_path,
        database,
        redis_url=REDIS_URL,
        rate_limit_per_second=10.0,
        rate_limit_burst=20,
        workers=3,
    )
    second = first.model_copy()
    a = build_services(first)
    b = build_services(second)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


@needs_redis
def test_two_instances_share_one_clients_limit(two_instances: tuple[Services, Services]) -> None:
    a, b = two_instances
    client = f"client-{secrets.token_hex(6)}"  # a fresh count in the shared Redis
    limit = a.rate_limiter.item_for(client).amount
    assert limit == 20  # 10/s with bursts of 20: 20 in any 2 s, across every instance
    results = [_allowed(a.rate_limiter if i % 2 else b.rate_limiter, client) for i in range(60)]
    assert sum(results) == limit
    assert a.readiness["rate_limits"]() is None


def _dead_redis() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there


def test_an_unreachable_redis_refuses_rather_than_allows() -> None:
    limiter = ClientRateLimiter(10.0, 20, {}, redis_url=_dead_redis())
    with pytest.raises(LimiterUnavailable):
        limiter.take("c1")
    reason = limiter.readiness()
    assert reason is not None
    assert "unreachable" in reason


def test_an_exchange_while_redis_is_down_is_503_with_retry_after_and_not_ready(
    broker: LiveBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    limiter = ClientRateLimiter(1000.0, 1000, {}, redis_url=_dead_redis())
    monkeypatch.setattr(broker.services, "rate_limiter", limiter)
    monkeypatch.setitem(broker.services.readiness, "rate_limits", limiter.readiness)
    response = post(broker, "r9z-ed-safeguarding", safeguarding())
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "5"
    assert "rate limit store" in response.json()["detail"]
    ready = broker.http.get("/readyz")
    assert ready.status_code == 503
    assert "unreachable" in ready.json()["checks"]["rate_limits"]
