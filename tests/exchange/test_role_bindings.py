"""Systems bound to roles, over HTTP on the demo: a system acts only for the roles its party's
administrator bound it to. The hospital's discharge system asking child-protection checks as a
safeguarding nurse is refused (403 naming the binding) and logged as a denied exchange; so is an
unbound system, and a system bound to the role for another agreement only."""

from __future__ import annotations

from typing import Any

from tests.exchange.helpers import admissions, entry, log_size, post, safeguarding
from tests.support import LiveBroker

FLOW = "cp-status-to-health-and-police"
UNBOUND = "system 'r9z-discharge' is not bound to role 'safeguarding-nurse'"


def _refused(broker: LiveBroker, client_id: str, body: dict[str, Any], reason: str) -> None:
    before = log_size(broker)
    response = post(broker, client_id, body)
    assert response.status_code == 403, response.text
    answer = response.json()
    assert answer["reasons"] == [reason]
    assert log_size(broker) == before + 1
    logged = entry(broker, answer["exchange_id"])
    assert logged["decision"] == "deny"
    assert logged["client_id"] == client_id
    assert reason in logged["reasons"]
    assert logged["released_fields"] == []
    assert logged["released_digest"] is None


def test_the_discharge_system_runs_no_child_protection_check(broker: LiveBroker) -> None:
    _refused(broker, "r9z-discharge", safeguarding(), UNBOUND)


def test_the_ed_safeguarding_system_bound_to_the_role_is_answered(broker: LiveBroker) -> None:
    response = post(broker, "r9z-ed-safeguarding", safeguarding())
    assert response.status_code == 200, response.text
    assert entry(broker, response.json()["exchange_id"])["decision"] == "allow"


def test_break_glass_under_an_unbound_role_is_a_denied_break_glass_entry(
    broker: LiveBroker,
) -> None:
    body = safeguarding(
        fields=["child_protection_plan.status", "social_worker.name"],
        break_glass=True,
        justification="child unresponsive, parent absent, plan status needed now",
    )
    before = log_size(broker)
    response = post(broker, "r9z-discharge", body)
    assert response.status_code == 403, response.text
    assert log_size(broker) == before + 1
    logged = entry(broker, response.json()["exchange_id"])
    assert logged["decision"] == "deny"
    assert logged["break_glass"] is True
    assert UNBOUND in logged["reasons"]


def test_an_unbound_system_is_refused_and_binding_it_takes_effect_at_once(
    broker: LiveBroker,
) -> None:
    registry = broker.services.registry
    assert registry.get_client("ccc-childrens-services").unbound  # the demo binds it to none
    # A council system under a council agreement the policy allows: refused for want of a
    # binding (before the source is asked: no answer is counted).
    _refused(
        broker,
        "ccc-childrens-services",
        admissions(),
        "system 'ccc-childrens-services' is not bound to role 'admissions-officer'",
    )
    # Bound by its administrator, answered; unbound again, refused on its next request.
    registry.bind("r9z-discharge", "safeguarding-nurse", actor="test")
    try:
        response = post(broker, "r9z-discharge", safeguarding())
        assert response.status_code == 200, response.text
    finally:
        registry.unbind("r9z-discharge", "safeguarding-nurse", actor="test")
    _refused(broker, "r9z-discharge", safeguarding(), UNBOUND)


def test_a_binding_narrowed_to_another_agreement_does_not_cover_this_one(
    broker: LiveBroker,
) -> None:
    registry = broker.services.registry
    registry.bind("r9z-discharge", "safeguarding-nurse", "ISA-HOSPITAL-DISCHARGE", actor="test")
    try:
        _refused(
            broker,
            "r9z-discharge",
            safeguarding(),
            f"{UNBOUND} for agreement ISA-SAFEGUARDING-CHILDREN flow {FLOW}",
        )
    finally:
        registry.unbind(
            "r9z-discharge", "safeguarding-nurse", "ISA-HOSPITAL-DISCHARGE", actor="test"
        )
