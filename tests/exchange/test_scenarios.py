"""The sharing request end to end: the broker on loopback, the demo sources on loopback."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from broker.audit.entry import check_released_record
from demo.identity import demo_id_token
from tests.exchange.helpers import (
    CHILD,
    NO_PLAN,
    admissions,
    entry,
    log_size,
    post,
    safeguarding,
)
from tests.support import LiveBroker


def test_ed_nurse_checks_a_child_on_a_plan(broker: LiveBroker) -> None:
    response = post(broker, "r9z-ed-safeguarding", safeguarding())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["record"] == {
        "name": {"family": "Hartley"},
        "child_protection_plan": {"status": "active", "category": "neglect"},
    }
    decision = body["decision"]
    assert decision["allow"] is True
    assert decision["withheld_fields"] == []
    assert decision["obligations"]["notify_provider"] is True
    assert decision["obligations"]["retain_until"]
    assert "DPA 2018 Sch 1 para 18" in decision["lawful_basis"]
    # In the log before the answer left, with a digest the recipient can check.
    logged = entry(broker, body["exchange_id"])
    assert logged["decision"] == "allow"
    assert logged["source_outcome"] == "ok"
    receipt = body["receipt"]
    salt = base64.b64decode(receipt["record_salt"])
    assert check_released_record(body["record"], salt, logged["released_digest"])
    assert receipt["leaf_hash"] == logged["leaf_hash"]
    assert "9990000018" not in str(logged)


def test_asking_for_a_withheld_field_shows_what_was_withheld_and_why(broker: LiveBroker) -> None:
    fields = [
        "name.family",
        "child_protection_plan.status",
        "social_worker.name",
        "address.postcode",
    ]
    body = post(broker, "r9z-ed-safeguarding", safeguarding(fields=fields)).json()
    assert set(body["decision"]["released_fields"]) == {
        "name.family",
        "child_protection_plan.status",
    }
    withheld = {w["field"]: w["reason"] for w in body["decision"]["withheld_fields"]}
    assert withheld["social_worker.name"] == "opened only by break-glass"
    assert "not permitted by agreement 'ISA-SAFEGUARDING-CHILDREN'" in withheld["address.postcode"]
    assert set(body["record"]) == {"name", "child_protection_plan"}


def test_fields_absent_means_every_permitted_field(broker: LiveBroker) -> None:
    body = post(broker, "r9z-ed-safeguarding", safeguarding(fields=None)).json()
    assert "social_worker" not in body["record"]
    assert body["record"]["child_protection_plan"]["status"] == "active"
    assert "allocated_team" in body["record"]


def test_a_child_without_a_plan(broker: LiveBroker) -> None:
    body = post(
        broker,
        "r9z-ed-safeguarding",
        safeguarding(subject={"type": "nhs_number", "value": NO_PLAN}),
    ).json()
    assert body["record"]["child_protection_plan"]["status"] == "none"


@pytest.mark.parametrize(
    ("client_id", "changes", "reason"),
    [
        pytest.param(
            "r9z-ed-safeguarding",
            {"purpose": "research"},
            "purpose 'research' is not covered by agreement 'ISA-SAFEGUARDING-CHILDREN'",
            id="purpose-not-covered",
        ),
        pytest.param(
            "r9z-ed-safeguarding",
            {"requested_by": {"user_id": "porter-2", "role": "porter"}},
            "role 'porter' may not make requests",
            id="role-not-allowed",
        ),
        pytest.param(
            "r9z-ed-safeguarding",
            {"case_reference": None},
            "requires a case reference",
            id="no-case-reference",
        ),
        pytest.param(
            "r9z-ed-safeguarding",
            {"fields": ["address.postcode"]},
            "none of the requested fields is permitted",
            id="nothing-permitted",
        ),
        pytest.param(
            "r9z-ed-safeguarding",
            {"agreement_id": "ISA-MADE-UP"},
            "no agreement permits this request",
            id="unknown-agreement",
        ),
        pytest.param(
            "wcp-mash",
            {
                "agreement_id": "ISA-HOSPITAL-DISCHARGE",
                "dataset": "r9z.discharge-summary",
                "purpose": "discharge-to-assess",
                "fields": None,
                "case_reference": None,
                "requested_by": {"user_id": "pc-1", "role": "mash-officer"},
            },
            "no agreement permits this request",
            id="non-party-gets-the-generic-refusal",
        ),
    ],
)
def test_refusals_are_403_logged_with_reasons(
    broker: LiveBroker, client_id: str, changes: dict[str, Any], reason: str
) -> None:
    before = log_size(broker)
    response = post(broker, client_id, safeguarding(**changes))
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert any(reason in r for r in body["reasons"]), body["reasons"]
    assert log_size(broker) == before + 1
    logged = entry(broker, body["exchange_id"])
    assert logged["decision"] == "deny"
    assert logged["reasons"]  # in full, for governance
    if "generic" in reason or reason == "no agreement permits this request":
        assert body["reasons"] == ["no agreement permits this request"]


def test_break_glass_opens_its_fields_and_queues_a_review(broker: LiveBroker) -> None:
    fields = ["child_protection_plan.status", "social_worker.name"]
    body = post(
        broker,
        "wcp-mash",
        safeguarding(
            fields=fields,
            break_glass=True,
            justification="child at immediate risk, out of hours",
            # break-glass needs the officer's ID token (the police's demo directory)
            requested_by={
                "user_id": "mash-officer-9",
                "role": "mash-officer",
                "id_token": demo_id_token(
                    "mash-officer-9", "mash-officer", "wcp-mash", now=broker.clock()
                ),
            },
        ),
    )
    assert body.status_code == 200, body.text
    answer = body.json()
    assert "social_worker" in answer["record"]
    assert answer["decision"]["obligations"]["review_break_glass"] is True
    assert entry(broker, answer["exchange_id"])["break_glass"] is True


def test_school_admissions_verifies_an_address_without_seeing_it(broker: LiveBroker) -> None:
    yes = post(broker, "ccc-school-admissions", admissions())
    assert yes.status_code == 200, yes.text
    assert yes.json()["match"] is True
    assert "record" not in yes.json()
    no = post(
        broker,
        "ccc-school-admissions",
        admissions(claims={"address.postcode": "CX9 9ZZ", "address.line1": "3 Linden Close"}),
    )
    assert no.json()["match"] is False


def test_verification_is_limited_per_subject(broker: LiveBroker) -> None:
    other = {"type": "uprn", "value": "100000000005"}
    answers = [
        post(broker, "ccc-school-admissions", admissions(subject=other)).status_code
        for _ in range(6)
    ]
    assert answers[:5] == [200] * 5
    assert answers[5] == 429


def test_subject_not_found_is_404_and_logged(broker: LiveBroker) -> None:
    missing = "9999990002"  # valid, in the test range, not a Calderbridge resident
    from broker.core.nhs_number import is_valid

    assert is_valid(missing)
    response = post(
        broker,
        "r9z-ed-safeguarding",
        safeguarding(subject={"type": "nhs_number", "value": missing}),
    )
    assert response.status_code == 404, response.text
    assert entry(broker, response.json()["exchange_id"])["source_outcome"] == "not_found"


@pytest.mark.parametrize(
    ("changes", "location"),
    [
        pytest.param(
            {"subject": {"type": "nhs_number", "value": "9990000019"}},
            "subject.value",
            id="bad-check-digit",
        ),
        pytest.param(
            {"subject": {"type": "nhs_number", "value": "9434765919"}},
            "subject.value",
            id="outside-the-test-range-in-the-demo",
        ),
        pytest.param(
            {"subject": {"type": "uprn", "value": "100000000001"}},
            "subject.type",
            id="dataset-does-not-accept-uprn",
        ),
        pytest.param({"fields": ["Name"]}, "fields.0", id="bad-field-name"),
        pytest.param({"colour": "red"}, "colour", id="unknown-key"),
        # Break-glass without a justification is refused too, but logged: see
        # tests/exchange/test_break_glass_refusals.py.
    ],
)
def test_malformed_requests_are_422_naming_the_field_and_not_logged(
    broker: LiveBroker, changes: dict[str, Any], location: str
) -> None:
    before = log_size(broker)
    response = post(broker, "r9z-ed-safeguarding", safeguarding(**changes))
    assert response.status_code == 422, response.text
    assert location in {e["location"] for e in response.json()["errors"]}
    assert log_size(broker) == before


def test_an_idempotent_retry_is_answered_again_not_logged_again(broker: LiveBroker) -> None:
    before = log_size(broker)
    first = post(broker, "r9z-ed-safeguarding", safeguarding(), **{"Idempotency-Key": "k-001"})
    again = post(broker, "r9z-ed-safeguarding", safeguarding(), **{"Idempotency-Key": "k-001"})
    assert first.json() == again.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert log_size(broker) == before + 1
    other = post(
        broker,
        "r9z-ed-safeguarding",
        safeguarding(fields=["name.family"]),
        **{"Idempotency-Key": "k-001"},
    )
    assert other.status_code == 422


def test_the_exchange_scope_is_needed(broker: LiveBroker) -> None:
    before = log_size(broker)
    assert post(broker, "ccc-governance", safeguarding()).status_code == 403
    assert log_size(broker) == before


@pytest.mark.parametrize("key", [None, "k-suspended"], ids=["plain", "idempotent-retry"])
def test_a_suspended_client_is_refused_before_anything_is_decided_or_replayed(
    broker: LiveBroker, key: str | None
) -> None:
    """The registry check runs in the same hand-off as the decision, but first: a suspended
    client with a still-valid token gets 401, nothing logged, no stored answer replayed."""
    headers = {} if key is None else {"Idempotency-Key": key}
    assert post(broker, "r9z-ed-safeguarding", safeguarding(), **headers).status_code == 200
    before = log_size(broker)
    broker.services.registry.set_status("r9z-ed-safeguarding", "suspended", actor="test")
    try:
        refused = post(broker, "r9z-ed-safeguarding", safeguarding(), **headers)
        assert refused.status_code == 401, refused.text
        assert "suspended" in refused.json()["detail"]
        assert "record" not in refused.json()
        assert log_size(broker) == before
    finally:
        broker.services.registry.set_status("r9z-ed-safeguarding", "active", actor="test")


def test_the_subject_is_never_in_the_log_in_clear(broker: LiveBroker) -> None:
    import sqlalchemy as sa

    post(broker, "r9z-ed-safeguarding", safeguarding())
    with broker.services.audit.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM audit_entries")).all()
    assert rows
    assert all(CHILD not in repr(tuple(r)) for r in rows)


def test_the_council_is_told_when_the_emergency_department_checks_a_child(
    broker: LiveBroker, demo_sources: Any
) -> None:
    import time

    answer = post(broker, "r9z-ed-safeguarding", safeguarding()).json()
    deadline = time.monotonic() + 10
    delivered: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        delivered = [
            e
            for e in demo_sources.webhook_receiver.snapshot()
            if e.get("data", e).get("exchange_id") == answer["exchange_id"]
            or e.get("exchange_id") == answer["exchange_id"]
        ]
        if delivered:
            break
        time.sleep(0.1)
    assert delivered, demo_sources.webhook_receiver.snapshot()[-1:]
    text = str(delivered[0])
    assert "Emergency Department safeguarding" in text
    assert "hospital-ed-nurse-17" not in text  # the requester's role, never their user id
