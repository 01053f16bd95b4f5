"""The consent condition: active, inside its period, actors, purpose and data matching."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.consent.model import ConsentQuery, ConsentRecord, evaluate
from tests.consent.factories import COUNCIL, DAY_MS, T0, record

ASK = {
    "from_party": COUNCIL,
    "to_party": COUNCIL,
    "purpose": "homelessness-assessment",
    "dataset": "ccc.proof-documents",
}


@pytest.mark.parametrize(
    ("consent", "now_ms", "ask", "state", "policy"),
    [
        pytest.param(record(), T0 + 1, {}, "granted", "given", id="active-in-period"),
        pytest.param(record(), T0, {}, "granted", "given", id="start-is-inclusive"),
        pytest.param(record(), T0 + 30 * DAY_MS, {}, "expired", "none", id="end-is-exclusive"),
        pytest.param(record(), T0 - 1, {}, "not_started", "none", id="before-start"),
        pytest.param(
            record(status="inactive", withdrawn_at_ms=T0 + 5),
            T0 + 6,
            {},
            "withdrawn",
            "withdrawn",
            id="withdrawn",
        ),
        pytest.param(
            record(period_end_ms=None), T0 + 3650 * DAY_MS, {}, "granted", "given", id="open-ended"
        ),
        pytest.param(record(), T0 + 1, {"purpose": "fraud"}, "none", "none", id="other-purpose"),
        pytest.param(record(), T0 + 1, {"to_party": "R9Z"}, "none", "none", id="other-recipient"),
        pytest.param(record(), T0 + 1, {"from_party": "R9Z"}, "none", "none", id="other-provider"),
        pytest.param(
            record(), T0 + 1, {"dataset": "ccc.benefit-claims"}, "none", "none", id="other-dataset"
        ),
        pytest.param(
            record(document_types=("income",)),
            T0 + 1,
            {"document_types": ("income",)},
            "granted",
            "given",
            id="document-type-covered",
        ),
        pytest.param(
            record(document_types=("identity",)),
            T0 + 1,
            {"document_types": ("income",)},
            "not_covered",
            "not_covered",
            id="document-type-other",
        ),
        pytest.param(
            record(document_types=("income", "identity")),
            T0 + 1,
            {"document_types": ("identity", "income", "residence")},
            "not_covered",
            "not_covered",
            id="document-types-some-not-covered",
        ),
        pytest.param(
            record(document_types=("income",)),
            T0 + 1,
            {"document_types": ()},
            "granted",
            "given",
            id="no-documents-nothing-to-cover",
        ),
        pytest.param(
            record(document_types=("identity",), status="inactive", withdrawn_at_ms=T0),
            T0 + 1,
            {"document_types": ("income",)},
            "withdrawn",
            "withdrawn",
            id="document-type-other-but-withdrawn",
        ),
    ],
)
def test_one_record(
    consent: ConsentRecord, now_ms: int, ask: dict[str, str], state: str, policy: str
) -> None:
    check = evaluate([consent], ConsentQuery(**{**ASK, **ask}), now_ms=now_ms)
    assert check.state == state
    assert check.policy_status == policy
    assert (check.consent_id == consent.id) == (state == "granted")


def test_not_covered_names_the_types_the_consent_covers() -> None:
    narrowed = record(id="narrow", document_types=("identity",))
    ask = ConsentQuery(**ASK, document_types=("income",))
    check = evaluate([narrowed], ask, now_ms=T0 + 1)
    assert (check.state, check.consent_id, check.covered_document_types) == (
        "not_covered",
        None,
        ("identity",),
    )
    # A consent covering every type of the request, beside the narrowed one, grants.
    wide = record(id="wide")
    assert evaluate([narrowed, wide], ask, now_ms=T0 + 1).consent_id == "wide"


def test_a_fresh_consent_after_a_withdrawal_grants_again() -> None:
    old = record(id="old", status="inactive", withdrawn_at_ms=T0 + 1)
    new = record(id="new", period_start_ms=T0 + 2)
    check = evaluate([old, new], ConsentQuery(**ASK), now_ms=T0 + 3)
    assert (check.state, check.consent_id) == ("granted", "new")


def test_no_records_is_none() -> None:
    assert evaluate([], ConsentQuery(**ASK), now_ms=T0).policy_status == "none"


@given(
    now_offset=st.integers(min_value=-10 * DAY_MS, max_value=60 * DAY_MS),
    withdrawn_offset=st.integers(min_value=-10 * DAY_MS, max_value=60 * DAY_MS),
)
def test_a_withdrawn_consent_never_grants_after_withdrawal(
    now_offset: int, withdrawn_offset: int
) -> None:
    consent = dataclasses.replace(
        record(), status="inactive", withdrawn_at_ms=T0 + withdrawn_offset
    )
    check = evaluate([consent], ConsentQuery(**ASK), now_ms=T0 + now_offset)
    assert check.policy_status != "given"
