"""Projection keeps exactly the released fields, nested, whatever the source sent."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.core.projection import flatten, project

CHILD = {
    "name": {"given": "Amelia", "family": "Thornbury"},
    "date_of_birth": "2016-04-02",
    "child_protection_plan": {
        "status": "active",
        "category": "neglect",
        "start_date": "2026-02-01",
    },
    "looked_after": {"status": False, "legal_status": "n/a"},
    "address": {"line1": "14 Wexcombe Row", "postcode": "CB1 4XZ"},
}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param(
            ["name.family", "child_protection_plan.status"],
            {"name": {"family": "Thornbury"}, "child_protection_plan": {"status": "active"}},
            id="nested-leaves",
        ),
        pytest.param(["date_of_birth"], {"date_of_birth": "2016-04-02"}, id="top-level"),
        pytest.param(["looked_after.status"], {"looked_after": {"status": False}}, id="false-kept"),
        pytest.param(["name.middle", "social_worker.name"], {}, id="absent-paths"),
        pytest.param(
            ["name"], {"name": {"given": "Amelia", "family": "Thornbury"}}, id="whole-object"
        ),
        pytest.param([], {}, id="nothing"),
        pytest.param(["name..family", ""], {}, id="malformed-paths"),
        pytest.param(["name.family.x"], {}, id="path-through-a-leaf"),
    ],
)
def test_projection(fields: list[str], expected: dict[str, Any]) -> None:
    assert project(CHILD, fields) == expected


def test_projection_copies_and_never_aliases_the_source() -> None:
    released = project(CHILD, ["name"])
    released["name"]["given"] = "changed"
    assert CHILD["name"]["given"] == "Amelia"


keys = st.sampled_from(["a", "b", "c", "status", "name"])
records = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5)),
    lambda children: st.dictionaries(keys, children, max_size=4),
    max_leaves=20,
).filter(lambda r: isinstance(r, dict))


@given(record=records, fields=st.lists(st.lists(keys, min_size=1, max_size=3).map(".".join)))
def test_no_leaf_outside_the_released_fields_is_ever_released(
    record: dict[str, Any], fields: list[str]
) -> None:
    released = flatten(project(record, fields))
    for path, value in released.items():
        assert any(path == f or path.startswith(f + ".") for f in fields), path
        assert flatten(record).get(path, value) == value


def test_a_repeating_group_is_projected_element_by_element() -> None:
    record = {
        "document": [
            {"type": "identity", "sha256": "a", "content": "secret"},
            {"sha256": "b"},
            "not a record",
        ],
        "tags": ["x", "y"],
    }
    assert project(record, ["document.type", "tags"]) == {
        "document": [{"type": "identity"}],
        "tags": ["x", "y"],
    }
    assert project(record, ["document.issuer"]) == {}
