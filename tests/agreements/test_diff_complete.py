"""The complete diff of two agreement versions: every field of the model is compared."""

from __future__ import annotations

import copy
import datetime as dt
import inspect
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from broker.agreements import model
from broker.agreements.authoring import read_document
from broker.agreements.diff import diff_documents
from broker.agreements.model import Agreement

EXAMPLES = Path(__file__).resolve().parents[2] / "agreements" / "examples" / "isa"

_CHOICES = [
    *[
        "provider",
        "recipient",
        "provider_and_recipient",
        "separate",
        "joint",
        "SIRO",
        "DPO",
        "verified",
        "asserted",
    ],
    *[
        "system",
        "prohibited",
        "allowed",
        "a",
        "b",
        "c",
        "d",
        "e",
        "f",
        "g",
        "h",
        "i",
        "j",
        "mon",
        "tue",
        "wed",
        "thu",
        "fri",
        "sat",
        "sun",
        "07:30",
    ],
    "19:00",
    "Caldicott Guardian",
    "Chief Executive",
]


def full_agreement() -> Agreement:
    """The safeguarding example with every optional key filled in."""
    doc = read_document(EXAMPLES / "ISA-SAFEGUARDING-CHILDREN.yaml")
    assert isinstance(doc, Agreement)
    content: dict[str, Any] = doc.content()
    flow = content["flows"][0]
    flow["attestation_valid_hours"] = 48
    flow["conditions"]["consent"] = {
        "required": True,
        "recorded_by": "calderbridge-city-council",
        "citizen_preview": False,
    }
    flow["conditions"]["office_hours"] = {"days": ["mon", "tue"], "start": "08:00", "end": "18:00"}
    content["parties"][1]["department"] = "Safeguarding team"
    content["contacts"][1]["phone"] = "01632 960 200"
    return Agreement.model_validate(content)


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place a single field can be changed: scalars, lists of names, whole list items."""
    out: list[tuple[Any, ...]] = []
    if isinstance(value, dict):
        for key, sub in value.items():
            out.extend(_leaves(sub, (*path, key)))
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for i, sub in enumerate(value):
            out.append((*path, i))
            out.extend(_leaves(sub, (*path, i)))
    else:
        out.append(path)
    return out


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    _get(doc, path[:-1])[path[-1]] = value


def _candidates(value: Any) -> list[Any]:
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value - 1]
    if isinstance(value, str):
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            pass
        else:
            return [(day + dt.timedelta(days=1)).isoformat()]
        if value.startswith("sha256:"):
            return ["sha256:" + "0" * 64]
        return [c for c in _CHOICES if c != value] + [value + "x", value + "-x"]
    if isinstance(value, list):
        out: list[Any] = []
        if len(value) > 1:
            out.append(value[1:])
        if value and isinstance(value[0], int):
            out.append([*value, 19])
        if value and isinstance(value[0], str):
            out.extend([*value, c] for c in ("mash-officer-2", "sat", "extra.field", "x"))
        return out
    if isinstance(value, dict):  # dataset digests
        return [{**value, "ccc.extra": "sha256:" + "1" * 64}]
    return []


FULL = full_agreement()
PATHS = [p for p in _leaves(FULL.content()) if p]


def _model_classes() -> list[type[model.Strict]]:
    return [
        c
        for _, c in inspect.getmembers(model, inspect.isclass)
        if issubclass(c, model.Strict) and c not in (model.Strict, model.Revocation)
    ]


def test_the_fixture_fills_every_field_of_every_model() -> None:
    keys = {p[i] for p in PATHS for i in range(len(p)) if isinstance(p[i], str)}
    missing = {f"{c.__name__}.{name}" for c in _model_classes() for name in c.model_fields} - {
        f"{c.__name__}.{k}" for c in _model_classes() for k in keys
    }
    assert not missing


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PATHS), st.integers(min_value=0, max_value=64))
def test_a_change_to_any_one_field_is_reported(path: tuple[Any, ...], pick: int) -> None:
    content = copy.deepcopy(FULL.content())
    if isinstance(path[-1], int):  # a whole party, purpose, flow or contact removed
        items = _get(content, path[:-1])
        assume(len(items) > 1)
        del items[path[-1]]
    else:
        options = _candidates(_get(content, path))
        assume(options)
        _set(content, path, options[pick % len(options)])
    try:
        changed = Agreement.model_validate(content)
    except ValidationError:
        assume(False)
        raise
    assume(changed.content() != FULL.content())
    changes = diff_documents(FULL, changed)
    assert changes
    # The change names the section and, for keyed lists, the item by its id.
    section = str(path[0])
    assert any(c.section == section for c in changes)
    named = [str(p) for p in path[1:] if isinstance(p, str)]
    text = " ".join(c.path for c in changes)
    # A changed identity (a flow's id, a contact's party) is that item removed and another added.
    item_level = all(c.path.endswith("]") for c in changes)
    for name in named[-1:]:
        assert name in text or item_level


def test_an_added_requester_role_is_reported() -> None:
    content = copy.deepcopy(FULL.content())
    content["flows"][0]["conditions"]["requester_roles"].append("school-nurse")
    changes = diff_documents(FULL, Agreement.model_validate(content))
    assert [(c.path, c.change, c.new) for c in changes] == [
        (
            "flows[cp-status-to-health-and-police].conditions.requester_roles",
            "added",
            "school-nurse",
        )
    ]


def test_reordering_parties_is_no_change() -> None:
    content = copy.deepcopy(FULL.content())
    content["parties"].reverse()
    assert diff_documents(FULL, Agreement.model_validate(content)) == ()


@pytest.mark.parametrize(
    ("where", "value", "expected"),
    [
        (
            ("validity", "expires_on"),
            "2030-03-31",
            "~ validity.expires_on: 2029-03-31 -> 2030-03-31",
        ),
        (
            ("flows", 0, "conditions", "break_glass", "review_within_days"),
            5,
            "~ flows[cp-status-to-health-and-police].conditions.break_glass."
            "review_within_days: 2 -> 5",
        ),
    ],
)
def test_lines_for_people(where: tuple[Any, ...], value: Any, expected: str) -> None:
    content = copy.deepcopy(FULL.content())
    _set(content, where, value)
    changes = diff_documents(FULL, Agreement.model_validate(content))
    assert [c.line() for c in changes] == [expected]
