"""POST /v1/policy/simulate: officers dry-run the live policy; nothing is fetched; it is logged."""

from __future__ import annotations

from typing import Any

import pytest

from tests.exchange.helpers import log_size
from tests.support import LiveBroker, demo_key

ED_CHECK = {
    "as_party": "R9Z",
    "agreement_id": "ISA-SAFEGUARDING-CHILDREN",
    "purpose": "child-protection-check",
    "dataset": "ccc.child-protection",
    "fields": ["name.family", "social_worker.name"],
    "role": "safeguarding-nurse",
    "case_reference": True,
}


def simulate(broker: LiveBroker, client_id: str, body: dict[str, Any]) -> Any:
    token = broker.token(client_id, demo_key(client_id))
    return broker.http.post(
        "/v1/policy/simulate", json=body, headers={"Authorization": f"Bearer {token}"}
    )


def test_a_dry_run_shows_the_decision_and_is_logged(broker: LiveBroker) -> None:
    before = log_size(broker)
    response = simulate(broker, "r9z-governance", ED_CHECK)
    assert response.status_code == 200, response.text
    decision = response.json()["decision"]
    assert decision["allow"] is True
    assert decision["released_fields"] == ["name.family"]
    assert decision["withheld_fields"] == [
        {"field": "social_worker.name", "reason": "opened only by break-glass"}
    ]
    assert log_size(broker) == before + 1


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        pytest.param({"case_reference": False}, "requires a case reference", id="no-case-ref"),
        pytest.param({"at": "2031-01-01T10:00:00Z"}, "expired on", id="after-expiry"),
    ],
)
def test_dry_runs_explain_refusals(
    broker: LiveBroker, changes: dict[str, Any], reason: str
) -> None:
    decision = simulate(broker, "ccc-governance", {**ED_CHECK, **changes}).json()["decision"]
    assert decision["allow"] is False
    assert any(reason in r for r in decision["reasons"]), decision["reasons"]


def test_officers_cannot_probe_other_parties_agreements(broker: LiveBroker) -> None:
    body = {**ED_CHECK, "as_party": "calderbridge-city-council", "agreement_id": "ISA-SPD-FRAUD"}
    assert simulate(broker, "r9z-governance", body).status_code == 403
    assert simulate(broker, "broker-oversight", body).status_code == 200


def test_partner_systems_cannot_simulate(broker: LiveBroker) -> None:
    assert simulate(broker, "r9z-ed-safeguarding", ED_CHECK).status_code == 403


def test_a_dry_run_as_a_registered_system_applies_its_role_bindings(broker: LiveBroker) -> None:
    """The hospital's governance asks whether its discharge system may run the check: no, it is
    not bound to the role; its emergency department system is."""
    refused = simulate(broker, "r9z-governance", {**ED_CHECK, "as_client": "r9z-discharge"})
    decision = refused.json()["decision"]
    assert decision["allow"] is False
    assert decision["released_fields"] == []
    assert "system 'r9z-discharge' is not bound to role 'safeguarding-nurse'" in decision["reasons"]
    allowed = simulate(broker, "r9z-governance", {**ED_CHECK, "as_client": "r9z-ed-safeguarding"})
    assert allowed.json()["decision"]["allow"] is True
