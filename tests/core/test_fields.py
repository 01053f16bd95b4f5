"""One rule for field patterns: exact names or a trailing ``.*``; a pattern matching nothing is
refused."""

from __future__ import annotations

import pytest

from broker.core.fields import FieldPatternError, expand_fields

CATALOGUE = ("person_id", "address.line1", "address.postcode", "address.geo.uprn", "addresses.x")


@pytest.mark.parametrize(
    ("patterns", "expected"),
    [
        pytest.param(
            ["address.*"],
            ("address.line1", "address.postcode", "address.geo.uprn"),
            id="wildcard-any-depth-never-a-sibling-prefix",
        ),
        pytest.param(["person_id", "person_id"], ("person_id",), id="exact-once"),
        pytest.param([], (), id="nothing"),
    ],
)
def test_expansion(patterns: list[str], expected: tuple[str, ...]) -> None:
    assert expand_fields(patterns, CATALOGUE) == expected
    assert set(expected) <= set(CATALOGUE)


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        pytest.param("address", "not in the catalogue", id="prefix-without-star-is-exact"),
        pytest.param("adress.*", "matches no catalogue field", id="empty-wildcard"),
        pytest.param("address*", "only a trailing", id="bad-wildcard"),
        pytest.param("a*.*", "only a trailing", id="star-inside-a-wildcard"),
    ],
)
def test_refused(pattern: str, message: str) -> None:
    with pytest.raises(FieldPatternError, match=message) as caught:
        expand_fields(["person_id", pattern], CATALOGUE)
    assert caught.value.pattern == pattern
