"""Answers belong to the system (and user) that asked, not to its party.

A citizen's preview approval is released only to the system and the user that made the held
request: another system of the same council (Revenues and Benefits naming Housing Options'
``preview_id``) or another officer on the same system is refused, the refusal is logged, and the
approval is still there for its own requester, once. An ``Idempotency-Key`` is the asking
system's own: another system of the same party using the same key gets its own answer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from broker.consent.tables import preview_holds
from tests.exchange.helpers import entry, log_size, post
from tests.exchange.test_citizen_preview import CLAIMS, call, consent, decide
from tests.support import LiveBroker

HOUSING = "ccc-housing-options"
REVENUES = "ccc-revenues-benefits"  # another system of the same council


@pytest.fixture(scope="module", autouse=True)
def revenues_bound_as_housing_officer(broker: LiveBroker) -> Iterator[None]:
    """The council binds Revenues and Benefits to Housing Options' role for this module: unbound,
    it would be refused for that alone (tests/exchange/test_role_bindings.py); bound, the
    approval is still not its to use."""
    broker.services.registry.bind(REVENUES, "housing-options-officer", actor="test")
    yield
    broker.services.registry.unbind(REVENUES, "housing-options-officer", actor="test")


def held_and_approved(broker: LiveBroker) -> str:
    consent(broker)
    held = post(broker, HOUSING, CLAIMS)
    assert held.status_code == 202, held.text
    exchange_id = str(held.json()["exchange_id"])
    assert decide(broker, exchange_id, "approve").status_code == 200
    return exchange_id


def refused_and_logged(
    broker: LiveBroker, client_id: str, body: dict[str, Any], reason: str
) -> dict[str, Any]:
    before = log_size(broker)
    response = post(broker, client_id, body)
    assert response.status_code == 403, response.text
    assert "record" not in response.json()
    assert any(reason in r for r in response.json()["reasons"]), response.json()
    assert log_size(broker) == before + 1
    logged = entry(broker, response.json()["exchange_id"])
    assert logged["decision"] == "deny"
    assert logged["client_id"] == client_id
    assert logged["released_fields"] == []
    assert any(reason in r for r in logged["reasons"])
    return logged


def test_another_system_or_user_cannot_use_the_approval_and_does_not_spoil_it(
    broker: LiveBroker,
) -> None:
    exchange_id = held_and_approved(broker)
    reused = {**CLAIMS, "preview_id": exchange_id}

    # The finding: Revenues and Benefits (same council, same fields) names Housing Options'
    # approved preview. Refused, logged, twice over (nothing is consumed).
    for _ in range(2):
        refused_and_logged(broker, REVENUES, reused, "asked for by another system")
    # The same system asking for another officer.
    other_officer = {
        **reused,
        "requested_by": {"user_id": "housing-officer-99", "role": "housing-options-officer"},
    }
    logged = refused_and_logged(broker, HOUSING, other_officer, "asked for by another user")
    assert logged["user_id"] == "housing-officer-99"

    status = call(broker, HOUSING, "GET", f"/v1/exchanges/{exchange_id}/preview").json()
    assert status["status"] == "approved"
    assert status["requester_client"] == HOUSING

    # The rightful requester is released, once.
    released = post(broker, HOUSING, reused)
    assert released.status_code == 200, released.text
    assert set(released.json()["record"]["claim"]) == {"type", "status"}
    logged_release = entry(broker, released.json()["exchange_id"])
    assert logged_release["decision"] == "allow"
    assert logged_release["client_id"] == HOUSING
    assert logged_release["details"]["preview_of"] == exchange_id
    refused_and_logged(broker, HOUSING, reused, "used already")
    # After the release, another system still learns nothing more than "another system".
    refused_and_logged(broker, REVENUES, reused, "asked for by another system")


def test_another_system_is_refused_before_the_citizen_decides_too(broker: LiveBroker) -> None:
    consent(broker)
    exchange_id = post(broker, HOUSING, CLAIMS).json()["exchange_id"]
    refused_and_logged(
        broker, REVENUES, {**CLAIMS, "preview_id": exchange_id}, "asked for by another system"
    )
    assert decide(broker, exchange_id, "approve").status_code == 200
    released = post(broker, HOUSING, {**CLAIMS, "preview_id": exchange_id})
    assert released.status_code == 200, released.text


def test_only_the_asking_system_sees_the_hold(broker: LiveBroker) -> None:
    consent(broker)
    exchange_id = post(broker, HOUSING, CLAIMS).json()["exchange_id"]
    path = f"/v1/exchanges/{exchange_id}/preview"
    assert call(broker, HOUSING, "GET", path).status_code == 200
    other = call(broker, REVENUES, "GET", path)
    assert other.status_code == 404, other.text
    assert "requester" not in other.text


def test_a_hold_that_names_no_requester_is_never_released(broker: LiveBroker) -> None:
    """Holds made before the requester was recorded (NULL after the upgrade) fail closed."""
    exchange_id = held_and_approved(broker)
    with broker.services.engine.begin() as conn:
        conn.execute(
            sa.update(preview_holds)
            .where(preview_holds.c.exchange_id == exchange_id)
            .values(requester_client=None, requester_user=None)
        )
    refused_and_logged(
        broker, HOUSING, {**CLAIMS, "preview_id": exchange_id}, "ask again for a new preview"
    )


def test_idempotency_keys_are_per_system_not_per_party(broker: LiveBroker) -> None:
    consent(broker)
    key = {"Idempotency-Key": "same-key-two-systems"}
    before = log_size(broker)
    first = post(broker, HOUSING, CLAIMS, **key)
    other = post(broker, REVENUES, CLAIMS, **key)
    assert first.status_code == other.status_code == 202, (first.text, other.text)
    assert "idempotent-replayed" not in other.headers
    assert first.json()["exchange_id"] != other.json()["exchange_id"]
    assert log_size(broker) == before + 2
    # Each system's own retry replays its own answer.
    again = post(broker, REVENUES, CLAIMS, **key)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == other.json()
    # Another body under the same key is the other system's business, not a 422 here.
    narrower = {**CLAIMS, "fields": ["claim.status"]}
    fresh_key = {"Idempotency-Key": "same-key-other-bodies"}
    assert post(broker, HOUSING, CLAIMS, **fresh_key).status_code == 202
    own = post(broker, REVENUES, narrower, **fresh_key)
    assert own.status_code == 202, own.text
    assert "idempotent-replayed" not in own.headers
    # Each hold is its requester's: Revenues and Benefits' own preview, approved, is its own.
    assert decide(broker, own.json()["exchange_id"], "approve", REVENUES).status_code == 200
    released = post(broker, REVENUES, {**narrower, "preview_id": own.json()["exchange_id"]})
    assert released.status_code == 200, released.text
    assert set(released.json()["record"]["claim"]) == {"status"}
