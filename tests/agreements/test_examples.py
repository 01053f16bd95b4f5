"""The example register matches the shared demo dataset table (DATASETS.md), which the policy and
adapters work relies on too."""

from __future__ import annotations

import pytest

from broker.agreements.loader import load_register
from tests.agreements.conftest import EXAMPLES, KNOWN_PARTIES, demo_store

COUNCIL, HOSPITAL, POLICE = "calderbridge-city-council", "R9Z", "west-calder-police"
OS = "OFFICIAL-SENSITIVE"

# id: (owner, subject id types, special category, classification, open)
TABLE = {
    "ccc.child-protection": (COUNCIL, ("nhs_number", "person_id"), "health", OS, False),
    "ccc.council-tax": (COUNCIL, ("uprn", "council_tax_account"), "none", OS, False),
    "ccc.electoral-register": (COUNCIL, ("uprn",), "none", "OFFICIAL", False),
    "ccc.housing-applications": (COUNCIL, ("person_id", "nhs_number"), "none", OS, False),
    "ccc.benefit-claims": (COUNCIL, ("person_id", "nhs_number"), "none", OS, False),
    "ccc.proof-documents": (COUNCIL, ("person_id", "nhs_number"), "none", OS, False),
    "r9z.patient-demographics": (HOSPITAL, ("nhs_number",), "health", OS, False),
    "r9z.ed-attendances": (HOSPITAL, ("nhs_number",), "health", OS, False),
    "r9z.discharge-summary": (HOSPITAL, ("nhs_number",), "health", OS, False),
    "wcp.police-concerns": (POLICE, ("nhs_number", "person_id"), "criminal_offence", OS, False),
    "ccc.spending-over-500": (COUNCIL, ("transaction_id",), "none", "OFFICIAL", True),
}

REGISTER = load_register(EXAMPLES / "register", demo_store().trust_snapshot(), KNOWN_PARTIES)


def test_every_example_entry_is_signed_and_listed() -> None:
    assert REGISTER.unverified == {}
    assert set(REGISTER.register.entries) == set(TABLE)


@pytest.mark.parametrize("dataset_id", sorted(TABLE))
def test_entry_matches_the_table(dataset_id: str) -> None:
    entry = REGISTER.register.entries[dataset_id]
    owner, id_types, special, classification, is_open = TABLE[dataset_id]
    assert (entry.owner, entry.subject_id_types, entry.special_category) == (
        owner,
        id_types,
        special,
    )
    assert (entry.classification, entry.open) == (classification, is_open)


def test_child_protection_catalogue_and_enums() -> None:
    entry = REGISTER.register.entries["ccc.child-protection"]
    fields = {f.name: f for f in entry.fields}
    assert fields["child_protection_plan.status"].values == ("active", "ended", "none")
    assert fields["child_protection_plan.category"].values == (
        "neglect",
        "physical-abuse",
        "emotional-abuse",
        "sexual-abuse",
        "multiple",
    )
    assert fields["looked_after.status"].type == "boolean"
    assert len(fields) == 18
