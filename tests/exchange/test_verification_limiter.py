"""The two verification counters (broker/exchange/limits.py) on the broker's database: per record
across every party and flow, and per party, flow and record; a refusal counts nothing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, func, select

from broker.db.migrate import upgrade
from broker.exchange.limits import VerificationLimited, VerificationLimiter
from broker.exchange.ports import VerificationAnswer
from broker.exchange.tables import verification_answers

DAY = 86_400


@pytest.fixture
def migrated(engine: Engine) -> Engine:
    """The broker's schema on SQLite, and on PostgreSQL when configured (tests/conftest.py)."""
    upgrade(engine)
    return engine


def answer(
    party: str = "council", flow: str = "f1", records: tuple[str, ...] = ("r1",)
) -> VerificationAnswer:
    return VerificationAnswer(
        dataset="ccc.council-tax",
        records=records,
        party_id=party,
        agreement_id="ISA-1",
        flow_id=flow,
        client_id=f"{party}-system",
    )


def rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(select(func.count()).select_from(verification_answers)).scalar_one()
        )


def test_per_party_flow_and_record_trips_first_when_smaller(migrated: Engine) -> None:
    engine = migrated
    limiter = VerificationLimiter(engine, per_record=5, per_flow=2, window_seconds=DAY)
    limiter.take(answer(), 1_000)
    limiter.take(answer(), 2_000)
    with pytest.raises(VerificationLimited) as refused:
        limiter.take(answer(), 3_000)
    assert refused.value.limit == "per_party_flow_record"
    assert refused.value.extra["limit"] == "per_party_flow_record"
    assert refused.value.retry_after_seconds == DAY - 2  # the oldest answer leaves the window
    # Another flow of the same party, and another party, still get answers until the record's.
    limiter.take(answer(flow="f2"), 4_000)
    limiter.take(answer(party="police"), 5_000)
    limiter.take(answer(party="police"), 6_000)
    with pytest.raises(VerificationLimited) as refused:
        limiter.take(answer(party="school"), 7_000)
    assert refused.value.limit == "per_record"
    assert rows(engine) == 5  # refusals count nothing
    limiter.take(answer(records=("r2",)), 8_000)  # another record has its own count


def test_the_window_moves_and_every_key_version_counts(migrated: Engine) -> None:
    engine = migrated
    limiter = VerificationLimiter(engine, per_record=2, per_flow=2, window_seconds=60)
    limiter.take(answer(records=("old-key",)), 0)
    limiter.take(answer(records=("new-key", "old-key")), 1_000)  # after a key rotation
    with pytest.raises(VerificationLimited):
        limiter.take(answer(records=("new-key", "old-key")), 2_000)
    limiter.take(answer(records=("new-key", "old-key")), 61_000)  # the first has left


def test_concurrent_answers_about_one_record_never_exceed_the_limit(migrated: Engine) -> None:
    limiter = VerificationLimiter(migrated, per_record=5, per_flow=5, window_seconds=DAY)

    def one(n: int) -> bool:
        try:
            limiter.take(answer(party=f"party-{n}"), 1_000 + n)
        except VerificationLimited:
            return False
        return True

    with ThreadPoolExecutor(max_workers=4) as pool:
        given = list(pool.map(one, range(12)))
    assert sum(given) == 5
    assert rows(migrated) == 5
