"""``POST /v1/exchanges`` with a user-restricted token (token exchange): the user and role come
from the token; ``requested_by`` may be left out, and where it is sent it must agree (422 naming
the difference, logged as a denied exchange)."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
from joserfc import jwt

from demo.identity import COUNCIL_DIRECTORY, DEMO_ISSUER, demo_provider_key
from tests.exchange.helpers import admissions, entry, post, safeguarding
from tests.exchange.test_token_exchange import NURSE, exchange, id_token, unverified_claims
from tests.support import LiveBroker

ADMISSIONS = "ccc-school-admissions"


def user_token(broker: LiveBroker, **changes: Any) -> str:
    response = exchange(broker, id_token(broker, **changes))
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def ask(broker: LiveBroker, token: str, body: dict[str, Any]) -> httpx.Response:
    return broker.http.post(
        "/v1/exchanges", json=body, headers={"Authorization": f"Bearer {token}"}
    )


def without_requested_by(**changes: Any) -> dict[str, Any]:
    body = safeguarding(**changes)
    del body["requested_by"]
    return body


def test_the_user_and_role_come_from_the_token(broker: LiveBroker, hospital_idp: None) -> None:
    response = ask(broker, user_token(broker), without_requested_by())
    assert response.status_code == 200, response.text
    logged = entry(broker, response.json()["exchange_id"])
    assert logged["user_id"] == NURSE
    assert logged["user_role"] == "safeguarding-nurse"
    assert logged["details"]["user_verified"] is True
    assert logged["details"]["user_issuer"] == DEMO_ISSUER


def test_break_glass_with_a_user_restricted_token(broker: LiveBroker, hospital_idp: None) -> None:
    body = without_requested_by(
        fields=["child_protection_plan.status", "social_worker.name"],
        break_glass=True,
        justification="child unresponsive, parent absent, plan status needed now",
    )
    response = ask(broker, user_token(broker), body)
    assert response.status_code == 200, response.text
    assert entry(broker, response.json()["exchange_id"])["user_id"] == NURSE


def test_a_requested_by_that_agrees_is_accepted(broker: LiveBroker, hospital_idp: None) -> None:
    body = safeguarding(requested_by={"user_id": NURSE, "role": "safeguarding-nurse"})
    response = ask(broker, user_token(broker), body)
    assert response.status_code == 200, response.text


def test_a_requested_by_that_disagrees_is_refused_and_logged(
    broker: LiveBroker, hospital_idp: None
) -> None:
    body = safeguarding(requested_by={"user_id": "someone-else", "role": "safeguarding-nurse"})
    response = ask(broker, user_token(broker), body)
    assert response.status_code == 422, response.text
    problem = response.json()
    [error] = problem["errors"]
    assert error["location"] == "requested_by.user_id"
    assert NURSE in error["message"]
    logged = entry(broker, problem["exchange_id"])
    assert logged["decision"] == "deny"
    assert logged["user_id"] == NURSE
    assert "requested_by disagrees with the user-restricted token" in logged["reasons"][0]


def test_a_role_the_token_does_not_give_is_refused(broker: LiveBroker, hospital_idp: None) -> None:
    body = safeguarding(requested_by={"role": "caldicott-guardian"})
    response = ask(broker, user_token(broker), body)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["location"] == "requested_by.role"
    logged = entry(broker, response.json()["exchange_id"])
    assert logged["decision"] == "deny"
    assert logged["user_role"] == "safeguarding-nurse"  # the token's role, not the body's


def test_an_id_token_beside_a_user_restricted_token_is_refused(
    broker: LiveBroker, hospital_idp: None
) -> None:
    body = safeguarding(requested_by={"id_token": id_token(broker)})
    response = ask(broker, user_token(broker), body)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["location"] == "requested_by.id_token"


def council_token(broker: LiveBroker, groups: list[str]) -> str:
    """A user-restricted token of a council officer from the council's directory (groups)."""
    now = int(broker.clock())
    claims = {
        "iss": COUNCIL_DIRECTORY.issuer,
        "aud": ADMISSIONS,
        "sub": "officer.patel@calderbridge.example",
        "groups": groups,
        "iat": now - 30,
        "exp": now + 300,
        "jti": secrets.token_urlsafe(8),
    }
    header = {"alg": "ES256", "kid": COUNCIL_DIRECTORY.kid}
    id_token = jwt.encode(header, claims, demo_provider_key(COUNCIL_DIRECTORY.key_name))
    response = exchange(broker, id_token, ADMISSIONS)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def test_a_user_with_several_roles_names_one(broker: LiveBroker) -> None:
    groups = ["All-Staff", "CCC-Housing-Options-Officers", "CCC-School-Admissions-Officers"]
    token = council_token(broker, groups)
    assert unverified_claims(token)["roles"] == ["housing-options-officer", "admissions-officer"]
    body = admissions()
    del body["requested_by"]
    unnamed = ask(broker, token, body)
    assert unnamed.status_code == 422, unnamed.text
    assert "several roles" in unnamed.json()["errors"][0]["message"]
    named = admissions(requested_by={"role": "admissions-officer"})
    response = ask(broker, council_token(broker, groups), named)
    assert response.status_code == 200, response.text
    assert entry(broker, response.json()["exchange_id"])["user_role"] == "admissions-officer"


def test_an_application_token_without_requested_by_is_the_system_itself(
    broker: LiveBroker,
) -> None:
    """No requested_by and no user token: the system asks for itself, which a flow that needs a
    verified user refuses (403, logged); a requested_by naming half a user is still 422."""
    response = post(broker, "r9z-ed-safeguarding", without_requested_by())
    assert response.status_code == 403, response.text
    assert response.json()["reasons"] == ["this flow needs a verified user"]
    logged = entry(broker, response.json()["exchange_id"])
    assert logged["decision"] == "deny"
    assert logged["user_id"] == "r9z-ed-safeguarding"
    assert logged["user_role"] == ""
    assert logged["details"]["user_assurance"] == "system"
    partial = post(broker, "r9z-ed-safeguarding", safeguarding(requested_by={"role": "x-y"}))
    assert partial.status_code == 422
    assert {e["location"] for e in partial.json()["errors"]} == {"requested_by.user_id"}
