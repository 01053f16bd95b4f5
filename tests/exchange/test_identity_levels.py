"""What each flow needs of the person behind a request (its agreement's ``identity``), over HTTP:
a verified user, a user the system names (asserted), or no person (the system itself). Every
refusal is a denied exchange in the log, marked with how the user was known."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.exchange.helpers import (
    admissions,
    ensure_idp,
    entry,
    log_size,
    post,
    safeguarding,
    throwaway_issuer,
)
from tests.support import LiveBroker

BREAK_GLASS = {
    "fields": ["child_protection_plan.status", "social_worker.name"],
    "break_glass": True,
    "justification": "child unresponsive, parent absent, plan status needed now",
}


def _denied(broker: LiveBroker, response: Any, reason: str) -> dict[str, Any]:
    assert response.status_code == 403, response.text
    assert reason in response.json()["reasons"]
    logged = entry(broker, response.json()["exchange_id"])
    assert logged["decision"] == "deny"
    assert logged["released_fields"] == []
    assert reason in logged["reasons"]
    return logged


def test_a_verified_flow_refuses_an_asserted_user_and_logs_it(broker: LiveBroker) -> None:
    before = log_size(broker)
    response = post(broker, "r9z-ed-safeguarding", safeguarding(), asserted=True)
    logged = _denied(broker, response, "this flow needs a verified user")
    assert log_size(broker) == before + 1
    assert logged["user_id"] == "hospital-ed-nurse-17"
    assert logged["details"]["user_assurance"] == "asserted"
    assert logged["details"]["user_verified"] is False


def test_the_same_request_with_a_verified_user_is_answered(broker: LiveBroker) -> None:
    response = post(broker, "r9z-ed-safeguarding", safeguarding())
    assert response.status_code == 200, response.text
    logged = entry(broker, response.json()["exchange_id"])
    assert logged["details"]["user_assurance"] == "verified"


def test_police_break_glass_on_an_asserted_identity_is_refused_and_logged(
    broker: LiveBroker,
) -> None:
    body = safeguarding(**BREAK_GLASS, requested_by={"user_id": "dc-4471", "role": "mash-officer"})
    response = post(broker, "wcp-mash", body, asserted=True)
    logged = _denied(broker, response, "break-glass needs a verified user")
    assert logged["break_glass"] is True
    assert logged["party_id"] == "west-calder-police"
    assert logged["details"]["user_assurance"] == "asserted"


def test_a_system_flow_is_answered_with_no_requested_by(broker: LiveBroker) -> None:
    body = admissions()
    del body["requested_by"]
    response = post(broker, "ccc-school-admissions", body)
    assert response.status_code == 200, response.text
    assert response.json()["match"] is True
    logged = entry(broker, response.json()["exchange_id"])
    assert logged["decision"] == "allow"
    assert logged["user_id"] == "ccc-school-admissions"
    assert logged["user_role"] == ""
    assert logged["details"]["user_assurance"] == "system"


def test_a_system_asking_for_itself_is_refused_on_a_verified_flow(broker: LiveBroker) -> None:
    body = safeguarding()
    del body["requested_by"]
    response = post(broker, "r9z-ed-safeguarding", body)
    logged = _denied(broker, response, "this flow needs a verified user")
    assert logged["details"]["user_assurance"] == "system"


@pytest.fixture
def police_require_id_tokens(broker: LiveBroker) -> Iterator[None]:
    ensure_idp(broker, "west-calder-police")
    store = broker.services.identity.store
    issuer = throwaway_issuer("west-calder-police")
    provider = store.get("west-calder-police", issuer)
    assert provider is not None
    store.remove("west-calder-police", actor="test", issuer=issuer)
    store.add(
        "west-calder-police",
        provider.issuer,
        actor="test",
        jwks=provider.jwks,
        role_claim=provider.role_claim,
        required=True,
    )
    yield
    store.remove("west-calder-police", actor="test", issuer=issuer)


def test_a_party_that_requires_id_tokens_still_refuses_without_one(
    broker: LiveBroker, police_require_id_tokens: None
) -> None:
    body = safeguarding(requested_by={"user_id": "dc-4471", "role": "mash-officer"})
    response = post(broker, "wcp-mash", body, asserted=True)
    assert response.status_code == 422, response.text
    no_person = safeguarding()
    del no_person["requested_by"]
    assert post(broker, "wcp-mash", no_person).status_code == 422
    verified = post(broker, "wcp-mash", body)
    assert verified.status_code == 200, verified.text


def test_a_break_glass_refused_early_names_the_system_when_no_person_is_named(
    broker: LiveBroker,
) -> None:
    body = safeguarding(**{**BREAK_GLASS, "justification": None})
    del body["requested_by"]
    response = post(broker, "r9z-ed-safeguarding", body)
    assert response.status_code == 422, response.text
    logged = entry(broker, response.json()["exchange_id"])
    assert logged["decision"] == "deny"
    assert logged["user_id"] == "r9z-ed-safeguarding"
    assert logged["details"]["user_assurance"] == "system"
