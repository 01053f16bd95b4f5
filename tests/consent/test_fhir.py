"""Consent records round-trip through FHIR R4 Consent JSON that fhir.resources validates."""

from __future__ import annotations

import json

import pytest
from fhir.resources.R4B.consent import Consent
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.consent.fhir import from_fhir, to_fhir
from broker.consent.model import ConsentRecord
from tests.consent.factories import T0, record


def round_trip(consent: ConsentRecord) -> ConsentRecord:
    validated = Consent.model_validate(to_fhir(consent))
    return from_fhir(json.loads(validated.model_dump_json(exclude_none=True, by_alias=True)))


@pytest.mark.parametrize(
    "consent",
    [
        pytest.param(record(), id="active"),
        pytest.param(record(period_end_ms=None, recorded_by_role=None), id="open-ended"),
        pytest.param(
            record(
                status="inactive",
                withdrawn_at_ms=T0 + 5000,
                withdrawn_by_client="ccc-citizen-portal",
                withdrawal_reason="no longer wanted",
            ),
            id="withdrawn",
        ),
        pytest.param(
            record(
                datasets=("ccc.proof-documents", "ccc.benefit-claims"),
                document_types=("identity", "income"),
            ),
            id="two-datasets-narrowed",
        ),
    ],
)
def test_round_trip(consent: ConsentRecord) -> None:
    assert round_trip(consent) == consent


def test_the_resource_says_permit_actors_purpose_and_never_the_identifier() -> None:
    doc = to_fhir(record())
    provision = doc["provision"]
    assert provision["type"] == "permit"
    roles = [a["role"]["coding"][0]["code"] for a in provision["actor"]]
    assert roles == ["CST", "IRCP"]
    assert provision["purpose"][0]["code"] == "homelessness-assessment"
    assert doc["patient"]["identifier"]["value"] == "ab" * 32
    assert doc["patient"]["identifier"]["system"].endswith(":v1:person_id")


def test_an_invalid_resource_is_refused_by_fhir_resources() -> None:
    doc = to_fhir(record())
    doc["provision"]["period"]["start"] = "not a date"
    with pytest.raises(ValueError, match="start"):
        Consent.model_validate(doc)


@settings(max_examples=25)
@given(
    start=st.integers(min_value=0, max_value=4_000_000_000_000),
    length=st.integers(min_value=1, max_value=10**11) | st.none(),
    name=st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
        min_size=1,
        max_size=40,
    ).filter(lambda s: s.strip() == s and s),
)
def test_round_trip_property(start: int, length: int | None, name: str) -> None:
    consent = record(
        period_start_ms=start,
        period_end_ms=None if length is None else start + length,
        recorded_by_name=name,
    )
    assert round_trip(consent) == consent
