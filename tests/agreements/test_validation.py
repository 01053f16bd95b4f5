"""Validation names file, place and reason for each rejection of the issue."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from broker.agreements.authoring import validate_file
from broker.agreements.loader import load_register
from broker.agreements.model import Agreement
from broker.agreements.parsing import parse_document
from broker.agreements.register import DatasetEntry
from broker.agreements.signing import TrustSnapshot
from broker.agreements.validation import check_unique_datasets, check_unique_versions
from broker.core.fields import fields_matching as expand_fields
from tests.agreements.conftest import EXAMPLES, KNOWN_PARTIES

ISA = (EXAMPLES / "isa" / "ISA-SAFEGUARDING-CHILDREN.yaml").read_text()
ENTRY = (EXAMPLES / "register" / "ccc.child-protection.yaml").read_text()
FLOW = "flows[0]"
_PINNED = re.search(r"ccc\.child-protection: (sha256:[0-9a-f]{64})", ISA)
assert _PINNED is not None
CP_DIGEST = _PINNED.group(1)


def _problems(
    tmp_path: Path, text: str, name: str = "doc.yaml"
) -> list[tuple[str, str, int | None]]:
    path = tmp_path / name
    path.write_text(text)
    return [(p.place, p.reason, p.line) for p in validate_file(path, EXAMPLES, KNOWN_PARTIES)]


def _edited(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def test_examples_validate(tmp_path: Path) -> None:
    assert _problems(tmp_path, ISA) == []
    assert _problems(tmp_path, ENTRY) == []


AGREEMENT_CASES = [
    pytest.param("title:", "titel:", "titel", "unknown key", id="unknown-key-top-level"),
    pytest.param(
        "      case_reference_required: true",
        "      case_reference_requried: true",
        f"{FLOW}.conditions.case_reference_requried",
        "unknown key",
        id="unknown-key-nested",
    ),
    pytest.param(
        "version: 1\n",
        "version: 1\nversion: 2\n",
        "version",
        "duplicate key 'version'",
        id="duplicate-yaml-key",
    ),
    pytest.param(
        "  - id: Y99902\n",
        "  - id: Y99999\n",
        "parties[3].id",
        "unknown party 'Y99999'",
        id="unknown-party-registry",
    ),
    pytest.param(
        "recipients: [R9Z,",
        "recipients: [northgate-housing, R9Z,",
        f"{FLOW}.recipients[0]",
        "unknown party 'northgate-housing' (not a party to this agreement)",
        id="unknown-party-in-flow",
    ),
    pytest.param(
        "    dataset: ccc.child-protection",
        "    dataset: ccc.child-protectoin",
        f"{FLOW}.dataset",
        "unknown dataset 'ccc.child-protectoin'",
        id="unknown-dataset",
    ),
    pytest.param(
        "      - date_of_birth\n",
        "      - date_of_birth\n      - nhs_number\n",
        f"{FLOW}.permitted_fields[2]",
        "unknown field 'nhs_number'",
        id="unknown-field",
    ),
    pytest.param(
        "      - allocated_team.*\n",
        "      - allocated_team.*\n      - school.*\n",
        f"{FLOW}.permitted_fields[5]",
        "unknown field 'school.*'",
        id="unknown-wildcard",
    ),
    pytest.param(
        "    provider: calderbridge-city-council",
        "    provider: R9Z",
        f"{FLOW}.provider",
        "is not the owner of dataset 'ccc.child-protection'",
        id="provider-not-owner",
    ),
    pytest.param(
        "      article_9: g\n",
        "",
        f"{FLOW}.lawful_basis.article_9",
        "special category data ('ccc.child-protection' holds health data) without an Article 9(2)",
        id="special-category-without-article-9",
    ),
    pytest.param(
        "      dpa_2018_schedule_1: [18]\n",
        "",
        f"{FLOW}.lawful_basis.dpa_2018_schedule_1",
        "Article 9(2)(g) needs a DPA 2018 Schedule 1 condition",
        id="article-9g-without-schedule-1",
    ),
    pytest.param(
        "      article_6: e",
        "      article_6: f",
        f"{FLOW}.lawful_basis.article_6",
        "Article 6(1)(f) legitimate interests cannot be relied on by a public authority",
        id="article-6f-public-authority",
    ),
    pytest.param(
        "      article_6: e",
        "      article_6: a",
        f"{FLOW}.conditions.consent",
        "consent needs a recorded consent condition",
        id="consent-basis-without-consent",
    ),
    pytest.param(
        "expires_on: 2029-03-31",
        "expires_on: 2026-03-01",
        "validity.expires_on",
        "expiry before effect",
        id="expiry-before-effect",
    ),
    pytest.param(
        "  - id: Y99902\n",
        "  - id: Y99901\n",
        "parties",
        "duplicate party id 'Y99901'",
        id="duplicate-party",
    ),
    pytest.param(
        "purposes:\n  - id: child-protection-check\n",
        "purposes:\n  - id: child-protection-check\n    description: again\n    necessity: again\n"
        "  - id: child-protection-check\n",
        "purposes",
        "duplicate purpose id",
        id="duplicate-purpose",
    ),
    pytest.param(
        "purposes: [child-protection-check]",
        "purposes: [hospital-admission]",
        f"{FLOW}.purposes[0]",
        "unknown purpose 'hospital-admission'",
        id="unknown-purpose",
    ),
    pytest.param(
        "extra_fields: [looked_after.legal_status, social_worker.name]",
        "extra_fields: [looked_after.legal_status, social_worker.phone]",
        f"{FLOW}.conditions.break_glass.extra_fields[1]",
        "unknown field 'social_worker.phone'",
        id="unknown-break-glass-field",
    ),
    pytest.param(
        "  ccc.child-protection: sha256:",
        "  ccc.council-tax: sha256:",
        "dataset_digests['ccc.council-tax']",
        "is not used by any flow",
        id="digest-unused",
    ),
    pytest.param(
        CP_DIGEST,
        "sha256:" + "0" * 64,
        "dataset_digests['ccc.child-protection']",
        "digest differs from the one the agreement was signed over",
        id="digest-differs",
    ),
    pytest.param(
        "onward_sharing: prohibited",
        "onward_sharing: maybe",
        f"{FLOW}.onward_sharing",
        "Input should be 'prohibited' or 'allowed'",
        id="bad-enum-value",
    ),
]


@pytest.mark.parametrize(("old", "new", "place", "reason"), AGREEMENT_CASES)
def test_agreement_rejections(tmp_path: Path, old: str, new: str, place: str, reason: str) -> None:
    found = _problems(tmp_path, _edited(ISA, old, new))
    assert any(p == place and reason in r for p, r, _ in found), found


def test_unknown_key_names_the_line(tmp_path: Path) -> None:
    text = _edited(ISA, "      case_reference_required: true", "      case_ref_required: true")
    [(place, _, line)] = _problems(tmp_path, text)
    assert place == f"{FLOW}.conditions.case_ref_required"
    assert line is not None
    assert "case_ref_required" in text.splitlines()[line - 1]


def test_yaml_merge_keys_are_refused(tmp_path: Path) -> None:
    text = ISA + "extra: &a {x: 1}\nother:\n  <<: *a\n"
    assert any("merge keys" in r for _, r, _ in _problems(tmp_path, text))


def test_criminal_offence_data_needs_a_schedule_1_condition(tmp_path: Path) -> None:
    text = _edited(ISA, "    dataset: ccc.child-protection", "    dataset: wcp.police-concerns")
    text = _edited(text, "      dpa_2018_schedule_1: [18]\n", "")
    found = _problems(tmp_path, text)
    assert any("criminal offence data ('wcp.police-concerns')" in r for _, r, _ in found), found


DATASET_CASES = [
    pytest.param(
        "owner: calderbridge-city-council",
        "owner: calderbridge-county",
        "owner",
        "unknown party 'calderbridge-county'",
        id="unknown-owner",
    ),
    pytest.param(
        "  - {name: address.town,",
        "  - {name: address.postcode,",
        "fields",
        "duplicate field name 'address.postcode'",
        id="duplicate-field",
    ),
    pytest.param(
        "    values: [active, ended, none]\n",
        "",
        "fields[7].values",
        "enum field 'child_protection_plan.status' lists no values",
        id="enum-no-values",
    ),
    pytest.param(
        "source: ccc-childrens-social-care",
        "source: ccc-childrens-social-care\nopen: true",
        "open",
        "cannot be open",
        id="open-special-category",
    ),
    pytest.param(
        "special_category: health",
        "special_category: sometimes",
        "special_category",
        "Input should be",
        id="bad-special-category",
    ),
    pytest.param(
        "classification: OFFICIAL-SENSITIVE",
        "classification: SECRET",
        "classification",
        "Input should be",
        id="bad-classification",
    ),
    pytest.param(
        "subject_id_types: [nhs_number, person_id]",
        "subject_id_types: [passport]",
        "subject_id_types[0]",
        "Input should be",
        id="unknown-subject-id-type",
    ),
    pytest.param(
        "asset_owner_role:", "asset_owner:", "asset_owner", "unknown key", id="unknown-key"
    ),
]


@pytest.mark.parametrize(("old", "new", "place", "reason"), DATASET_CASES)
def test_dataset_rejections(tmp_path: Path, old: str, new: str, place: str, reason: str) -> None:
    found = _problems(tmp_path, _edited(ENTRY, old, new))
    assert any(p == place and reason in r for p, r, _ in found), found


def test_duplicate_agreement_versions_across_files() -> None:
    doc = parse_document(ISA, "a.yaml")
    assert isinstance(doc, Agreement)
    problems = check_unique_versions([("a.yaml", doc), ("b.yaml", doc)])
    assert [(p.file, p.place) for p in problems] == [("a.yaml", "version"), ("b.yaml", "version")]
    assert "duplicate agreement 'ISA-SAFEGUARDING-CHILDREN' version 1" in problems[0].reason


def test_duplicate_dataset_ids_across_files(tmp_path: Path) -> None:
    entry = parse_document(ENTRY, "a.yaml")
    assert isinstance(entry, DatasetEntry)
    assert len(check_unique_datasets([("a.yaml", entry), ("b.yaml", entry)])) == 2
    register_dir = tmp_path / "register"
    register_dir.mkdir()
    (register_dir / "a.yaml").write_text(ENTRY)
    (register_dir / "b.yaml").write_text(ENTRY)
    loaded = load_register(register_dir, TrustSnapshot(), KNOWN_PARTIES)
    assert loaded.register.get("ccc.child-protection") is None
    assert "more than one register file" in loaded.unverified["ccc.child-protection"]


def test_unsigned_entry_counts_for_nothing(tmp_path: Path) -> None:
    register_dir = tmp_path / "register"
    register_dir.mkdir()
    (register_dir / "e.yaml").write_text(ENTRY)
    loaded = load_register(register_dir, TrustSnapshot(), KNOWN_PARTIES)
    assert loaded.register.entries == {}
    assert loaded.unverified == {
        "ccc.child-protection": "not signed by 'calderbridge-city-council'"
    }


@pytest.mark.parametrize(
    ("patterns", "expected"),
    [
        pytest.param(["name.*"], ("name.given", "name.family"), id="wildcard"),
        pytest.param(["date_of_birth"], ("date_of_birth",), id="exact"),
        pytest.param(["name"], (), id="prefix-without-star-is-exact"),
        pytest.param(["nam.*"], (), id="partial-prefix-matches-nothing"),
    ],
)
def test_expand_fields(patterns: list[str], expected: tuple[str, ...]) -> None:
    catalogue = ["person_id", "name.given", "name.family", "date_of_birth", "names.other"]
    assert expand_fields(patterns, catalogue) == expected


def test_consistency_problems_carry_the_line(tmp_path: Path) -> None:
    text = _edited(ISA, "    provider: calderbridge-city-council", "    provider: R9Z")
    found = [(p, line) for p, r, line in _problems(tmp_path, text) if "is not the owner" in r]
    [(place, line)] = found
    assert place == f"{FLOW}.provider"
    assert line is not None
    assert text.splitlines()[line - 1].strip() == "provider: R9Z"


def test_every_document_model_refuses_unknown_keys_and_is_frozen() -> None:
    from pydantic import BaseModel

    import broker.agreements.model as model_module
    import broker.agreements.register as register_module

    models = [
        obj
        for module in (model_module, register_module)
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, BaseModel) and obj is not BaseModel
    ]
    assert len(models) > 15
    for m in models:
        assert m.model_config.get("extra") == "forbid", m
        assert m.model_config.get("frozen") is True, m


def test_helpers_for_the_policy_compiler() -> None:
    doc = parse_document(ISA, "a.yaml")
    assert isinstance(doc, Agreement)
    assert doc.flows[0].lawful_basis.labels() == (
        "UK GDPR 6(1)(e)",
        "UK GDPR 9(2)(g)",
        "DPA 2018 Sch 1 para 18",
    )
    from broker.agreements.model import OfficeHours

    assert OfficeHours().iso_weekdays() == frozenset({1, 2, 3, 4, 5})
    assert OfficeHours(days=("sat", "sun")).iso_weekdays() == frozenset({6, 7})


def test_a_parsed_agreement_cannot_be_changed_in_memory() -> None:
    from pydantic import ValidationError

    doc = parse_document(ISA, "a.yaml")
    assert isinstance(doc, Agreement)
    with pytest.raises(ValidationError, match="frozen"):
        doc.version = 2  # type: ignore[misc]
    with pytest.raises(TypeError, match="does not support item assignment"):
        doc.dataset_digests["ccc.council-tax"] = CP_DIGEST  # type: ignore[index]
    with pytest.raises(AttributeError):
        doc.flows[0].permitted_fields.append("address.*")  # type: ignore[attr-defined]
