from __future__ import annotations

import datetime as dt

import pytest

from broker.core.errors import InvalidInput
from broker.policy.input import PolicyRequest, build_input, epoch_ns
from tests.policy.fixtures import utc

REQ = PolicyRequest("c", "p", "u", "r", "purpose", "ds", "ISA-X")


@pytest.mark.parametrize(
    ("now", "uk_date", "weekday", "text"),
    [
        ("2026-03-29T00:59:59Z", "2026-03-29", 7, "Sun 00:59"),
        ("2026-03-29T01:00:00Z", "2026-03-29", 7, "Sun 02:00"),
        ("2026-10-25T00:59:59Z", "2026-10-25", 7, "Sun 01:59"),
        ("2026-10-25T01:00:00Z", "2026-10-25", 7, "Sun 01:00"),
        ("2026-06-30T23:30:00Z", "2026-07-01", 3, "Wed 00:30"),
    ],
    ids=["before-spring-forward", "after-spring-forward", "before-fall-back", "after-fall-back",
         "bst-date-rolls-over"],
)  # fmt: skip
def test_uk_clock_fields(now: str, uk_date: str, weekday: int, text: str) -> None:
    clock = build_input(REQ, utc(now))["clock"]
    assert (clock["uk_date"], clock["uk_weekday"], clock["uk_text"]) == (uk_date, weekday, text)
    hours, minutes = text.split()[1].split(":")
    assert clock["uk_minute"] == int(hours) * 60 + int(minutes)


def test_now_is_rfc3339_utc_and_exact_ns() -> None:
    now = dt.datetime(2026, 3, 29, 2, 30, 0, 123456, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    built = build_input(REQ, now)
    assert built["now"] == "2026-03-29T01:30:00.123456Z"
    assert built["now_ns"] == epoch_ns(now) == 1774747800123456000


def test_naive_time_is_refused() -> None:
    with pytest.raises(InvalidInput, match="not well formed") as info:
        build_input(REQ, dt.datetime(2026, 1, 1, 12))
    assert info.value.problems[0].location == "now"


def test_fields_absent_means_all_and_lists_are_canonical() -> None:
    assert "fields" not in build_input(REQ, utc("2026-01-01T00:00:00Z"))
    built = build_input(
        PolicyRequest(**{**REQ.__dict__, "fields": ("b", "a", "b")}), utc("2026-01-01T00:00:00Z")
    )
    assert built["fields"] == ["a", "b"]


def test_verify_mode_takes_claims_not_fields() -> None:
    with pytest.raises(InvalidInput):
        build_input(
            PolicyRequest(**{**REQ.__dict__, "mode": "verify", "fields": ("a",)}),
            utc("2026-01-01T00:00:00Z"),
        )
