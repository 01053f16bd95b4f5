"""NHS numbers, in one place: normalise, validate (Modulus 11), test range, format, generate.

Pure functions, no I/O. The rules (NHS Data Dictionary, see DOMAIN.md): ten digits; multiply digits
one to nine by 10, 9, ..., 2; sum; take the remainder modulo 11; the check digit is 11 minus the
remainder, with 11 meaning 0 and 10 meaning the number cannot be valid. Numbers starting ``999`` are
reserved for testing and are the only ones the demo and tests use.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from broker.core.errors import FieldProblem, InvalidInput

#: FHIR identifier system of NHS numbers.
NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"

#: The prefix of numbers reserved for testing.
TEST_RANGE_PREFIX = "999"

_SEPARATORS = re.compile(r"[\s\-]+")
_TEN_DIGITS = re.compile(r"[0-9]{10}")
_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)


def normalise(raw: str) -> str:
    """``raw`` without spaces or hyphens: ``"943 476 5919"`` -> ``"9434765919"``. No validation."""
    return _SEPARATORS.sub("", raw.strip())


def check_digit(first_nine: str) -> int | None:
    """The Modulus 11 check digit for nine digits, or None when no digit can make them valid."""
    if len(first_nine) != 9 or not first_nine.isascii() or not first_nine.isdigit():
        raise ValueError("check_digit needs exactly nine ASCII digits")
    total = sum(int(digit) * weight for digit, weight in zip(first_nine, _WEIGHTS, strict=True))
    check = 11 - total % 11
    if check == 11:
        return 0
    if check == 10:
        return None
    return check


def is_valid(raw: str) -> bool:
    """True when ``raw`` (after :func:`normalise`) is ten digits with a correct check digit."""
    number = normalise(raw)
    if not _TEN_DIGITS.fullmatch(number):
        return False
    return check_digit(number[:9]) == int(number[9])


def is_test_number(raw: str) -> bool:
    """True when ``raw`` is a valid NHS number from the test range (starting 999)."""
    number = normalise(raw)
    return number.startswith(TEST_RANGE_PREFIX) and is_valid(number)


def validate(raw: str, *, location: str = "subject.value", test_range_only: bool = False) -> str:
    """The normalised number, or :class:`InvalidInput` naming ``location`` and what is wrong.

    ``test_range_only`` also refuses numbers outside the 999 test range (the demo sets it).
    """
    number = normalise(raw)
    problem: str | None = None
    if not _TEN_DIGITS.fullmatch(number):
        problem = "an NHS number is 10 digits (spaces and hyphens allowed)"
    elif check_digit(number[:9]) != int(number[9]):
        problem = "NHS number fails the Modulus 11 check"
    elif test_range_only and not number.startswith(TEST_RANGE_PREFIX):
        problem = "only test-range NHS numbers (starting 999) are accepted here"
    if problem is not None:
        raise InvalidInput("invalid NHS number", [FieldProblem(location, problem)])
    return number


def format_nhs_number(raw: str) -> str:
    """The 3-3-4 display form (``"943 476 5919"``); raises :class:`InvalidInput` when invalid."""
    number = validate(raw)
    return f"{number[:3]} {number[3:6]} {number[6:]}"


def test_number(index: int) -> str:
    """The ``index``-th valid test-range number, counting up from 999 000 001x (deterministic).

    Six free digits give 1,000,000 candidates of which about one in eleven has no valid check
    digit and is skipped, so ``index`` must be below 909,091.
    """
    for number in iter_test_numbers(start=index):
        return number
    raise ValueError("index beyond the test range")


def iter_test_numbers(start: int = 0) -> Iterator[str]:
    """Valid test-range numbers in ascending order, skipping the first ``start`` of them."""
    if start < 0:
        raise ValueError("start must be non-negative")
    seen = 0
    for serial in range(1, 1_000_000):
        first_nine = f"{TEST_RANGE_PREFIX}{serial:06d}"
        check = check_digit(first_nine)
        if check is None:
            continue
        if seen >= start:
            yield f"{first_nine}{check}"
        seen += 1
