"""Every refused break-glass attempt is a denied exchange in the log, whatever stage refused it;
a subject not found at the source is an outcome of its own (never an allow). Over HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from broker.exchange.limits import ClientRateLimiter
from demo.identity import demo_id_token, register_demo_identity_provider
from tests.exchange.helpers import entry, log_size, post, safeguarding
from tests.support import LiveBroker, citizen_token, demo_key

BREAK_GLASS = {
    "fields": ["child_protection_plan.status", "social_worker.name"],
    "break_glass": True,
    "justification": "child unresponsive, parent absent, plan status needed now",
}
MISSING = "9999990002"  # valid, in the test range, not a Calderbridge resident


@pytest.fixture
def hospital_idp(broker: LiveBroker) -> Iterator[None]:
    register_demo_identity_provider(broker.services.identity.store)
    yield
    broker.services.identity.store.remove("R9Z", actor="test")


def _refused_entry(broker: LiveBroker, response: Any, stage: str) -> dict[str, Any]:
    """The answer names the logged entry; the entry is a denied break-glass exchange whose
    reason names ``stage``, with nothing released."""
    exchange_id = response.json()["exchange_id"]
    logged = entry(broker, exchange_id)
    assert logged["decision"] == "deny"
    assert logged["outcome"] == "deny"
    assert logged["break_glass"] is True
    assert logged["released_fields"] == []
    assert logged["released_digest"] is None
    assert any(stage in r for r in logged["reasons"]), logged["reasons"]
    assert logged["party_id"] == "R9Z"
    assert logged["client_id"] == "r9z-ed-safeguarding"
    return logged


def test_break_glass_without_a_justification_is_422_and_logged(broker: LiveBroker) -> None:
    before = log_size(broker)
    response = post(
        broker, "r9z-ed-safeguarding", safeguarding(**{**BREAK_GLASS, "justification": None})
    )
    assert response.status_code == 422, response.text
    assert log_size(broker) == before + 1
    logged = _refused_entry(broker, response, "request not valid (justification)")
    assert logged["subject_pseudonym"] is not None  # the citizen's report lists the attempt
    assert logged["user_id"] == "hospital-ed-nurse-17"
    assert logged["details"]["user_verified"] is False


def test_break_glass_without_an_id_token_is_refused_by_the_policy_and_logged(
    broker: LiveBroker, hospital_idp: None
) -> None:
    """The party has a provider but does not require ID tokens: the request goes on as an
    asserted person and the policy refuses it (403), a denied exchange marked asserted."""
    response = post(broker, "r9z-ed-safeguarding", safeguarding(**BREAK_GLASS), asserted=True)
    assert response.status_code == 403, response.text
    assert "break-glass needs a verified user" in response.json()["reasons"]
    logged = _refused_entry(broker, response, "break-glass needs a verified user")
    assert logged["details"]["user_assurance"] == "asserted"
    assert logged["details"]["user_verified"] is False


def test_break_glass_with_a_forged_id_token_is_422_and_logged(
    broker: LiveBroker, hospital_idp: None
) -> None:
    token = demo_id_token("nurse.okoro@r9z.example", "safeguarding-nurse", now=time.time())
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    body = safeguarding(
        **BREAK_GLASS,
        requested_by={"user_id": "x", "role": "safeguarding-nurse", "id_token": forged},
    )
    response = post(broker, "r9z-ed-safeguarding", body)
    assert response.status_code == 422, response.text
    logged = _refused_entry(broker, response, "ID token not accepted")
    assert logged["details"]["user_verified"] is False


def test_break_glass_refused_by_the_policy_is_403_and_logged(broker: LiveBroker) -> None:
    body = safeguarding(
        **BREAK_GLASS, requested_by={"user_id": "porter-2", "role": "hospital-porter"}
    )
    response = post(broker, "r9z-ed-safeguarding", body)
    assert response.status_code == 403, response.text
    logged = entry(broker, response.json()["exchange_id"])
    assert logged["decision"] == "deny"
    assert logged["break_glass"] is True
    assert logged["released_fields"] == []


def test_break_glass_over_the_clients_rate_is_429_and_logged(
    broker: LiveBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    limiter = ClientRateLimiter(0.001, 1, {})
    limiter.take("r9z-ed-safeguarding")  # the one request of the burst is spent
    monkeypatch.setattr(broker.services, "rate_limiter", limiter)
    response = post(broker, "r9z-ed-safeguarding", safeguarding(**BREAK_GLASS))
    assert response.status_code == 429, response.text
    assert "Retry-After" in response.headers
    _refused_entry(broker, response, "rate limit")


def test_break_glass_reusing_an_idempotency_key_is_422_and_logged(broker: LiveBroker) -> None:
    key = f"bg-{time.time_ns()}"
    first = post(
        broker, "r9z-ed-safeguarding", safeguarding(**BREAK_GLASS), **{"Idempotency-Key": key}
    )
    assert first.status_code == 200, first.text
    other = safeguarding(**BREAK_GLASS, case_reference="ED-2026-11-0099")
    response = post(broker, "r9z-ed-safeguarding", other, **{"Idempotency-Key": key})
    assert response.status_code == 422, response.text
    _refused_entry(broker, response, "request not valid")


def test_a_refused_break_glass_attempt_fails_closed_when_the_log_cannot_be_written(
    broker: LiveBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise OSError("disk full")

    monkeypatch.setattr(broker.services.audit, "append", broken)
    response = post(
        broker, "r9z-ed-safeguarding", safeguarding(**{**BREAK_GLASS, "justification": None})
    )
    assert response.status_code == 503, response.text


def test_a_subject_not_at_the_source_is_404_and_logged_as_not_found(broker: LiveBroker) -> None:
    response = post(
        broker,
        "r9z-ed-safeguarding",
        safeguarding(subject={"type": "nhs_number", "value": MISSING}),
    )
    assert response.status_code == 404, response.text
    exchange_id = response.json()["exchange_id"]
    logged = entry(broker, exchange_id)
    assert logged["decision"] == "not_found"
    assert logged["outcome"] == "not_found"
    assert logged["source_outcome"] == "not_found"
    assert logged["released_fields"] == []
    assert logged["released_digest"] is None

    token = broker.token("r9z-governance", demo_key("r9z-governance"))
    found = broker.http.get(
        "/v1/exchanges",
        params={"decision": "not_found", "limit": 500},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert found.status_code == 200, found.text
    assert exchange_id in {i["exchange_id"] for i in found.json()["items"]}
    allowed = broker.http.get(
        "/v1/exchanges",
        params={"decision": "allow", "limit": 500},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert exchange_id not in {i["exchange_id"] for i in allowed.json()["items"]}

    # The citizen's report (once the safeguarding flow's subject access hold is over).
    broker.clock.offset += 400 * 86_400
    try:
        portal = citizen_token(broker, MISSING)
        report = broker.http.get(
            "/v1/subjects/access-report",
            params={"subject_type": "nhs_number", "subject_value": MISSING},
            headers={"Authorization": f"Bearer {portal}"},
        )
    finally:
        broker.clock.offset -= 400 * 86_400
    assert report.status_code == 200, report.text
    line = next(e for e in report.json()["exchanges"] if e["exchange_id"] == exchange_id)
    assert line["decision"] == "not_found"
    assert line["released_fields"] == []
