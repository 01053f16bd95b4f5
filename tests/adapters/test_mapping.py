"""Pure mapping pieces: record nesting and projection, claims, FHIRPath subset, value types."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters import fhirpath
from adapters.bindings import DatasetBinding, SourceConfig
from adapters.errors import SourceBadData
from adapters.records import claims_hold
from adapters.values import to_catalogue
from broker.core.projection import flatten, nest, project

PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "identifier": [
        {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9990000018"},
        {"system": "urn:other", "value": "X1"},
    ],
    "name": [
        {"use": "old", "family": "Old"},
        {"use": "usual", "given": ["Amelia", "Rose"], "family": "Hartley"},
    ],
    "address": [{"use": "home", "line": ["14 Weaver Street", "Calderbridge"]}],
    "generalPractitioner": [{"identifier": {"system": "ods", "value": "Y99901"}}],
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param(
            "Patient.identifier.where(system='https://fhir.nhs.uk/Id/nhs-number').value",
            "9990000018",
            id="where-with-url",
        ),
        pytest.param(
            "Patient.name.where(use='usual').first().given.first()", "Amelia", id="where-first"
        ),
        pytest.param("Patient.name.where(use='usual').given", ["Amelia", "Rose"], id="many"),
        pytest.param("Patient.name[1].family", "Hartley", id="index"),
        pytest.param("Patient.name.last().family", "Hartley", id="last"),
        pytest.param(
            "Patient.address.first().line.join(', ')", "14 Weaver Street, Calderbridge", id="join"
        ),
        pytest.param(
            "Patient.generalPractitioner.where(identifier.system='ods').exists()",
            True,
            id="dotted-where-key",
        ),
        pytest.param("Patient.telecom.count()", 0, id="count-empty"),
        pytest.param("Patient.telecom.value", None, id="absent"),
        pytest.param("Encounter.period.start", None, id="other-resource-type"),
    ],
)
def test_fhirpath(path: str, expected: object) -> None:
    assert fhirpath.evaluate(PATIENT, path) == expected


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("patient.name", id="lower-case-type"),
        pytest.param("Patient.name.resolve()", id="unsupported-function"),
        pytest.param("Patient.name.where(use=usual)", id="unquoted"),
        pytest.param("Patient..name", id="double-dot"),
    ],
)
def test_fhirpath_refuses(path: str) -> None:
    with pytest.raises(ValueError, match=r"path|function|where|parse"):
        fhirpath.parse(path)


names = st.lists(st.from_regex(r"[a-z]{1,4}(\.[a-z]{1,4}){0,2}", fullmatch=True), max_size=8)


@settings(max_examples=100)
@given(names)
def test_nest_flatten_roundtrip(fields: list[str]) -> None:
    flat = {f: i for i, f in enumerate(fields)}
    try:
        record = nest(flat)
    except ValueError:
        return  # one name is a prefix of another: refused, as promised
    assert flatten(record) == flat


@settings(max_examples=100)
@given(names, names)
def test_project_never_adds_fields(fields: list[str], asked: list[str]) -> None:
    try:
        record = nest({f: 1 for f in fields})
    except ValueError:
        return
    released = flatten(project(record, asked))
    assert set(released) <= set(asked) & set(fields) | {
        f for f in fields if any(f.startswith(a + ".") for a in asked)
    }


def test_project_repeating_group() -> None:
    record = {"document": [{"type": "identity", "sha256": "a"}, {"type": "income", "sha256": "b"}]}
    assert project(record, ["document.type"]) == {
        "document": [{"type": "identity"}, {"type": "income"}]
    }


@pytest.mark.parametrize(
    ("held", "claims", "holds"),
    [
        pytest.param(
            {"address.postcode": "CX1 4AB"},
            {"address.postcode": "cx14ab"},
            True,
            id="postcode-spaces-and-case",
        ),
        pytest.param({"name.family": "Hartley"}, {"name.family": " hartley "}, True, id="trim"),
        pytest.param({"flag": True}, {"flag": "true"}, True, id="boolean"),
        pytest.param({"amount": "112.40"}, {"amount": "112.4"}, False, id="string-vs-string"),
        pytest.param({"x": None}, {"x": None}, False, id="nothing-held-never-matches"),
        pytest.param({}, {}, False, id="no-claims-is-no"),
    ],
)
def test_claims(held: dict[str, object], claims: dict[str, object], holds: bool) -> None:
    assert claims_hold(held, claims) is holds


BINDING = DatasetBinding(
    dataset="d",
    source=SourceConfig(name="s", kind="memory", endpoint=""),
    fields={},
    identifiers={"person_id": "id"},
    options={"types": {"a": "date", "b": "boolean", "c": "integer", "d": "decimal"}},
)


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        pytest.param("a", "2026-01-02", "2026-01-02", id="date"),
        pytest.param("a", "2026-01-02T10:00:00Z", "2026-01-02", id="datetime-to-date"),
        pytest.param("b", 1, True, id="sqlite-boolean"),
        pytest.param("c", "7", 7, id="integer-from-text"),
        pytest.param("d", "112.40", "112.40", id="decimal-exact"),
        pytest.param("z", 5, 5, id="untyped"),
    ],
)
def test_values(field: str, value: object, expected: object) -> None:
    assert to_catalogue(BINDING, field, value) == expected


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("a", "15/05/2020", id="date"),
        pytest.param("b", "yes", id="boolean"),
        pytest.param("c", True, id="bool-is-not-integer"),
        pytest.param("d", 1.1, id="float-is-not-exact"),
    ],
)
def test_values_refused_name_the_field(field: str, value: object) -> None:
    with pytest.raises(SourceBadData, match=f"field {field}:") as caught:
        to_catalogue(BINDING, field, value)
    assert caught.value.field == field
