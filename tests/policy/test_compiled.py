from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import pytest

from broker.policy.compiled import (
    CompiledFlow,
    OfficeHours,
    PolicyData,
    compile_data,
    day_start_ns,
    expand_fields,
    policy_data_from_json,
)
from broker.policy.errors import PolicyCompileError
from tests.policy.fixtures import CHILD_PROTECTION, DATASETS, DEMO_DATA, SAFEGUARDING

FLOW = SAFEGUARDING.flows[0]
OVERLAP = dataclasses.replace(FLOW, id="b")


def _with_flow(**changes: Any) -> PolicyData:
    flow = dataclasses.replace(FLOW, **changes)
    return PolicyData((dataclasses.replace(SAFEGUARDING, flows=(flow,)),), DATASETS)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_with_flow(dataset="ccc.nope"), "not in the register"),
        (_with_flow(permitted_fields=("name.middle",)), "not in the catalogue"),
        (_with_flow(permitted_fields=("nothing.*",)), "matches no catalogue field"),
        (_with_flow(permitted_fields=("name*",)), "only a trailing"),
        (_with_flow(provider="R9Z"), "is not the owner"),
        (_with_flow(recipients=("northgate-housing",)), "is not a party"),
        (_with_flow(retention_days=-1), "must not be negative"),
        (
            PolicyData(
                (dataclasses.replace(SAFEGUARDING, flows=(FLOW, OVERLAP)),),
                DATASETS,
            ),
            "flows must not overlap",
        ),
        (PolicyData((SAFEGUARDING, SAFEGUARDING), DATASETS), "listed twice"),
        (
            PolicyData(
                (dataclasses.replace(SAFEGUARDING, expires_on=dt.date(2025, 1, 1)),), DATASETS
            ),
            "expires before",
        ),
    ],
    ids=[
        "unknown-dataset", "unknown-field", "empty-wildcard", "bad-wildcard", "provider-not-owner",
        "recipient-not-party", "negative-retention", "overlapping-flows", "duplicate-agreement",
        "expiry-before-effect",
    ],
)  # fmt: skip
def test_compile_refuses(data: PolicyData, message: str) -> None:
    with pytest.raises(PolicyCompileError, match=message):
        compile_data(data)


def test_wildcards_expand_against_the_catalogue() -> None:
    assert expand_fields(["name.*"], CHILD_PROTECTION.fields, where="t") == [
        "name.family",
        "name.given",
    ]


def test_index_is_agreement_dataset_purpose_party() -> None:
    isa = compile_data(DEMO_DATA)["isa"]
    index = isa["agreements"]["ISA-SAFEGUARDING-CHILDREN"]["index"]
    assert index["ccc.child-protection"]["child-protection-check"]["R9Z"] == (
        "child-protection-status"
    )


def test_validity_is_uk_local_days() -> None:
    # 2027-03-31 ends at midnight BST, 23:00 UTC.
    end = day_start_ns(dt.date(2027, 4, 1))
    assert end == int(dt.datetime(2027, 3, 31, 23, tzinfo=dt.UTC).timestamp()) * 10**9


def test_office_hours_must_make_sense() -> None:
    with pytest.raises(PolicyCompileError, match="start before"):
        OfficeHours(start=dt.time(18), end=dt.time(8))


def test_json_form_round_trips_and_refuses_unknown_keys() -> None:
    flow: dict[str, Any] = {
        "id": "f",
        "dataset": "ccc.electoral-register",
        "provider": "calderbridge-city-council",
        "recipients": ["calderbridge-city-council"],
        "purposes": ["p"],
        "lawful_basis": ["UK GDPR 6(1)(e)"],
        "permitted_fields": ["address.*"],
        "conditions": {"office_hours": {"weekdays": [1, 2], "start": "09:00", "end": "17:00"}},
    }
    doc: dict[str, Any] = {
        "agreements": [
            {
                "id": "ISA-X",
                "version": 1,
                "digest": "sha256:00",
                "parties": ["calderbridge-city-council"],
                "effective_from": "2026-01-01",
                "expires_on": None,
                "flows": [flow],
            }
        ],
        "datasets": [
            {"id": d.id, "owner": d.owner, "fields": list(d.fields), "open": d.open}
            for d in DATASETS
        ],
    }
    data = policy_data_from_json(json.loads(json.dumps(doc)))
    assert isinstance(data.agreements[0].flows[0], CompiledFlow)
    assert data.agreements[0].flows[0].conditions.office_hours == OfficeHours(
        frozenset({1, 2}), dt.time(9), dt.time(17)
    )
    compile_data(data)
    flow["conditions"]["case_refrence_required"] = True
    with pytest.raises(PolicyCompileError, match="not valid"):
        policy_data_from_json(doc)
