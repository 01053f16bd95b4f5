"""NHS number rules (DOMAIN.md) and subject identifier validation."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.core import nhs_number
from broker.core.errors import InvalidInput
from broker.core.identifiers import SubjectId, parse_subject


@pytest.mark.parametrize(
    ("raw", "valid"),
    [
        pytest.param("9434765919", True, id="domain-valid-1"),
        pytest.param("943 476 5919", True, id="domain-valid-1-spaced"),
        pytest.param("654-100-3238", True, id="domain-valid-2-hyphens"),
        pytest.param("9434765918", False, id="domain-invalid-check"),
        pytest.param("9990000018", True, id="design-example-test-range"),
        pytest.param("943476591", False, id="nine-digits"),
        pytest.param("94347659190", False, id="eleven-digits"),
        pytest.param("94347659l9", False, id="letter"),
        pytest.param("", False, id="empty"),
        pytest.param("٩٤٣٤٧٦٥٩١٩", False, id="non-ascii-digits"),
    ],
)
def test_is_valid(raw: str, valid: bool) -> None:
    assert nhs_number.is_valid(raw) is valid


def test_check_digit_ten_means_no_valid_number() -> None:
    # 000000010: 1*3 = 3, 11 - 3 = 8 ... find a nine-digit prefix whose check would be 10.
    prefix = next(f"{n:09d}" for n in range(1000) if nhs_number.check_digit(f"{n:09d}") is None)
    assert all(not nhs_number.is_valid(prefix + str(d)) for d in range(10))


def test_validate_names_the_location() -> None:
    with pytest.raises(InvalidInput, match="invalid NHS number") as caught:
        nhs_number.validate("943 476 5918", location="subject.value")
    assert caught.value.problems[0].location == "subject.value"
    assert "Modulus 11" in caught.value.problems[0].message


def test_validate_test_range_only_refuses_real_range() -> None:
    with pytest.raises(InvalidInput, match="invalid NHS number") as caught:
        nhs_number.validate("9434765919", test_range_only=True)
    assert "999" in caught.value.problems[0].message


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        pytest.param("9434765919", "943 476 5919", id="plain"),
        pytest.param(" 654-100-3238 ", "654 100 3238", id="hyphens-and-padding"),
    ],
)
def test_format(raw: str, shown: str) -> None:
    assert nhs_number.format_nhs_number(raw) == shown


def test_generator_yields_valid_distinct_test_numbers_in_order() -> None:
    numbers = list(itertools.islice(nhs_number.iter_test_numbers(), 2000))
    assert numbers[0] == "9990000018"
    assert len(set(numbers)) == len(numbers)
    assert numbers == sorted(numbers)
    assert all(nhs_number.is_test_number(n) for n in numbers)
    assert nhs_number.test_number(1999) == numbers[1999]


@settings(max_examples=200)
@given(st.integers(min_value=0, max_value=999_999_999), st.integers(0, 9))
def test_exactly_one_check_digit_or_none(prefix: int, digit: int) -> None:
    first_nine = f"{prefix:09d}"
    check = nhs_number.check_digit(first_nine)
    assert nhs_number.is_valid(first_nine + str(digit)) is (check == digit)


@settings(max_examples=100)
@given(st.integers(min_value=0, max_value=800_000))
def test_single_digit_change_is_always_detected(index: int) -> None:
    number = nhs_number.test_number(index % 5000)
    for position in range(3, 10):
        for replacement in "0123456789":
            if replacement == number[position]:
                continue
            changed = number[:position] + replacement + number[position + 1 :]
            assert not nhs_number.is_valid(changed)


@pytest.mark.parametrize(
    ("type_", "raw", "expected"),
    [
        pytest.param("nhs_number", "999 000 0018", "9990000018", id="nhs-spaces"),
        pytest.param("person_id", " p0001234", "P0001234", id="person-id-case"),
        pytest.param("uprn", "100012345678", "100012345678", id="uprn-12"),
        pytest.param("council_tax_account", "CT00012345", "CT00012345", id="ct-account"),
        pytest.param("transaction_id", "TX-2026/0001", "TX-2026/0001", id="transaction"),
    ],
)
def test_parse_subject_normalises(type_: str, raw: str, expected: str) -> None:
    assert parse_subject(type_, raw) == SubjectId(type_, expected)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("type_", "raw", "location"),
    [
        pytest.param("nhs_number", "9434765918", "subject.value", id="nhs-bad-check"),
        pytest.param("uprn", "1000123456789", "subject.value", id="uprn-13-digits"),
        pytest.param("uprn", "12a", "subject.value", id="uprn-letters"),
        pytest.param("person_id", "P123", "subject.value", id="person-id-short"),
        pytest.param("council_tax_account", "CT123", "subject.value", id="ct-short"),
        pytest.param("passport", "X", "subject.type", id="unknown-type"),
    ],
)
def test_parse_subject_refuses(type_: str, raw: str, location: str) -> None:
    with pytest.raises(InvalidInput, match=r"subject identifier|NHS number") as caught:
        parse_subject(type_, raw)
    assert [p.location for p in caught.value.problems] == [location]


def test_subject_repr_hides_the_value() -> None:
    assert "9990000018" not in repr(parse_subject("nhs_number", "9990000018"))
