"""The citizen's preview: on flows that ask for it, the exchange is held until the citizen
approves through the council's portal, proven by her own token (her NHS number, verified by the
council's citizen sign-in). Held, approved, refused and expired are all logged."""

from __future__ import annotations

from typing import Any

from tests.exchange.helpers import entry, post, record_consent
from tests.support import PORTAL, LiveBroker, citizen_token, demo_key

#: Dawn Ashworth, the benefits claimant, by the NHS number her citizen sign-in verifies.
DAWN_NHS = "9990000085"
DAWN = {"type": "nhs_number", "value": DAWN_NHS}

CLAIMS = {
    "agreement_id": "ISA-PROOF-REUSE",
    "purpose": "homelessness-assessment",
    "dataset": "ccc.benefit-claims",
    "subject": DAWN,
    "fields": ["claim.type", "claim.status"],
    "requested_by": {"user_id": "housing-officer-12", "role": "housing-options-officer"},
}


def call(broker: LiveBroker, client_id: str, method: str, path: str, **kwargs: Any) -> Any:
    token = broker.token(client_id, demo_key(client_id))
    return broker.http.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)


def consent(broker: LiveBroker) -> None:
    response = record_consent(broker, "ccc.benefit-claims", DAWN)
    assert response.status_code == 201, response.text


def decide(
    broker: LiveBroker, exchange_id: str, decision: str, asker: str = "ccc-housing-options"
) -> Any:
    """The citizen decides on the portal; ``asker``, the system that asked, reads the hold id."""
    hold = call(broker, asker, "GET", f"/v1/exchanges/{exchange_id}/preview").json()
    return broker.http.post(
        f"/v1/subjects/previews/{hold['id']}/decision",
        json={"decision": decision, "subject": DAWN},
        headers={"Authorization": f"Bearer {citizen_token(broker, DAWN_NHS, PORTAL)}"},
    )


def test_held_then_approved_then_released_once(broker: LiveBroker) -> None:
    consent(broker)
    held = post(broker, "ccc-housing-options", CLAIMS)
    assert held.status_code == 202, held.text
    exchange_id = held.json()["exchange_id"]
    assert "record" not in held.json()
    assert entry(broker, exchange_id)["details"]["preview"] == "held"
    status = call(broker, "ccc-housing-options", "GET", held.json()["status_url"])
    assert status.json()["status"] == "held"
    # Asking again before the citizen decides is refused, and logged.
    early = post(broker, "ccc-housing-options", {**CLAIMS, "preview_id": exchange_id})
    assert early.status_code == 403
    assert "not approved" in early.json()["reasons"][0]

    assert decide(broker, exchange_id, "approve").status_code == 200
    released = post(broker, "ccc-housing-options", {**CLAIMS, "preview_id": exchange_id})
    assert released.status_code == 200, released.text
    assert released.json()["record"]["claim"]["type"] in {
        "housing-benefit",
        "council-tax-reduction",
    }
    assert entry(broker, released.json()["exchange_id"])["details"]["preview_of"] == exchange_id
    again = post(broker, "ccc-housing-options", {**CLAIMS, "preview_id": exchange_id})
    assert again.status_code == 403
    assert "used already" in again.json()["reasons"][0]


def test_a_refused_preview_releases_nothing(broker: LiveBroker) -> None:
    consent(broker)
    held = post(broker, "ccc-housing-options", CLAIMS).json()
    assert decide(broker, held["exchange_id"], "refuse").status_code == 200
    refused = post(broker, "ccc-housing-options", {**CLAIMS, "preview_id": held["exchange_id"]})
    assert refused.status_code == 403
    assert "refused" in refused.json()["reasons"][0]


def test_an_approval_is_for_exactly_that_request(broker: LiveBroker) -> None:
    consent(broker)
    held = post(broker, "ccc-housing-options", CLAIMS).json()
    decide(broker, held["exchange_id"], "approve")
    wider = {
        **CLAIMS,
        "fields": ["claim.type", "claim.weekly_amount"],
        "preview_id": held["exchange_id"],
    }
    response = post(broker, "ccc-housing-options", wider)
    assert response.status_code == 403
    assert "another request" in response.json()["reasons"][0]


def test_an_unanswered_preview_expires(broker: LiveBroker) -> None:
    consent(broker)
    held = post(broker, "ccc-housing-options", CLAIMS).json()
    broker.clock.offset += broker.settings.preview_ttl_seconds + 60
    try:
        response = post(
            broker, "ccc-housing-options", {**CLAIMS, "preview_id": held["exchange_id"]}
        )
    finally:
        broker.clock.offset -= broker.settings.preview_ttl_seconds + 60
    assert response.status_code in (401, 403), response.text
