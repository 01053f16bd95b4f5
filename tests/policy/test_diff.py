from __future__ import annotations

import dataclasses

from broker.policy.compiled import BreakGlass, Conditions
from broker.policy.diff import Permission, diff_agreements
from tests.policy.fixtures import CHILD_PROTECTION, DATASETS, SAFEGUARDING

FLOW = SAFEGUARDING.flows[0]


def test_same_agreement_has_no_changes() -> None:
    assert diff_agreements(SAFEGUARDING, SAFEGUARDING, DATASETS).unchanged


def test_gained_and_lost_rows() -> None:
    new_flow = dataclasses.replace(
        FLOW,
        recipients=("R9Z", "Y99901", "Y99902"),  # police dropped
        permitted_fields=(*FLOW.permitted_fields, "address.postcode"),
        conditions=Conditions(break_glass=BreakGlass(("social_worker.name",))),
    )
    new = dataclasses.replace(SAFEGUARDING, version=3, flows=(new_flow,))
    diff = diff_agreements(SAFEGUARDING, new, DATASETS)
    purpose = "child-protection-check"
    assert Permission("R9Z", CHILD_PROTECTION.id, purpose, "address.postcode") in diff.gained
    assert Permission("west-calder-police", CHILD_PROTECTION.id, purpose, "name.given") in diff.lost
    assert (
        Permission("R9Z", CHILD_PROTECTION.id, purpose, "looked_after.legal_status", True)
        in diff.lost
    )
    assert list(diff.gained) == sorted(diff.gained)


def test_a_flow_that_stops_needing_a_verified_user_shows_in_the_diff() -> None:
    new = dataclasses.replace(
        SAFEGUARDING, version=3, flows=(dataclasses.replace(FLOW, identity="asserted"),)
    )
    diff = diff_agreements(SAFEGUARDING, new, DATASETS)
    purpose = "child-protection-check"
    gained = Permission("R9Z", CHILD_PROTECTION.id, purpose, "name.family", identity="asserted")
    assert gained in diff.gained
    assert Permission("R9Z", CHILD_PROTECTION.id, purpose, "name.family") in diff.lost
    assert {row["identity"] for row in diff.rows() if row["change"] == "gained"} == {"asserted"}


def test_catalogue_growing_under_a_wildcard_shows_as_gained() -> None:
    grown = dataclasses.replace(CHILD_PROTECTION, fields=(*CHILD_PROTECTION.fields, "name.middle"))
    register = [grown if d.id == grown.id else d for d in DATASETS]
    diff = diff_agreements(SAFEGUARDING, SAFEGUARDING, DATASETS, register)
    assert {p.field for p in diff.gained} == {"name.middle"}
    assert not diff.lost


def test_rows_for_json_output() -> None:
    grown = dataclasses.replace(CHILD_PROTECTION, fields=(*CHILD_PROTECTION.fields, "name.middle"))
    register = [grown if d.id == grown.id else d for d in DATASETS]
    rows = diff_agreements(SAFEGUARDING, SAFEGUARDING, DATASETS, register).rows()
    assert {r["change"] for r in rows} == {"gained"}
    assert rows[0] == {
        "change": "gained",
        "party": "R9Z",
        "dataset": "ccc.child-protection",
        "purpose": "child-protection-check",
        "field": "name.middle",
        "break_glass": False,
        "identity": "verified",
    }
