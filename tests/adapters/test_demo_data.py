"""The synthetic population: deterministic, test-range NHS numbers, the well-known subjects."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest

from broker.core import nhs_number
from demo.sources import subjects
from demo.sources.population import Population, generate


@pytest.fixture(scope="module")
def population() -> Population:
    return generate()


def _digest(pop: Population) -> str:
    return hashlib.sha256(
        repr((pop.people, pop.plans, pop.council_tax, pop.documents)).encode()
    ).hexdigest()


def test_same_seed_same_city(population: Population) -> None:
    assert _digest(generate(residents=10_000)) == _digest(population)
    assert _digest(generate(seed=7, residents=300)) != _digest(generate(residents=300))


def test_about_ten_thousand_residents_with_valid_test_numbers(population: Population) -> None:
    assert 10_000 <= len(population.people) < 10_010
    numbers = [p.nhs_number for p in population.people]
    assert len(set(numbers)) == len(numbers)
    assert all(nhs_number.is_test_number(n) for n in numbers)
    assert len({p.person_id for p in population.people}) == len(numbers)
    assert all(len(a.uprn) <= 12 for a in population.addresses)
    assert {p.gp_practice for p in population.people} == {"Y99901", "Y99902"}


def test_proportions(population: Population) -> None:
    children = [p for p in population.people if p.age() < 18]
    active = [c for c in population.plans if c.status == "active"]
    assert 0.005 <= len(active) / len(children) <= 0.025
    assert population.looked_after
    assert any(a.single_person_discount for a in population.council_tax)
    kinds = Counter(d.type for d in population.documents)
    assert set(kinds) == {"identity", "income", "residence"}


@pytest.mark.parametrize("subject", subjects.ALL_SUBJECTS, ids=lambda s: s.label)
def test_well_known_subjects_are_generated(
    population: Population, subject: subjects.DemoSubject
) -> None:
    person = population.person(subject.person_id)
    address = population.address(person.uprn)
    assert (person.nhs_number, person.given, person.family, person.uprn, address.postcode) == (
        subject.nhs_number,
        subject.given,
        subject.family,
        subject.uprn,
        subject.postcode,
    )
    if subject.council_tax_account:
        account = next(a for a in population.council_tax if a.uprn == subject.uprn)
        assert account.reference == subject.council_tax_account


def test_claimant_documents_have_the_published_hashes(population: Population) -> None:
    documents = {
        d.type: d.sha256
        for d in population.documents
        if d.person_id == subjects.BENEFITS_CLAIMANT.person_id
    }
    assert documents == subjects.BENEFITS_CLAIMANT_DOCUMENTS
