"""The entry model: UUIDv7 ids, times, sealing, commitments and the canonical leaf bytes."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.audit.entry import (
    AuditEntry,
    canonical_json,
    commitment,
    format_time_ms,
    leaf_bytes,
    new_exchange_id,
    parse_leaf,
    parse_time_ms,
    seal,
    search_columns,
)
from broker.audit.errors import AuditEntryError
from tests.audit.conftest import make_entry


def test_exchange_ids_are_time_ordered_uuid7() -> None:
    earlier = new_exchange_id(1_795_900_000_000)
    later = new_exchange_id(1_795_900_000_001)
    assert uuid.UUID(earlier).version == 7
    assert uuid.UUID(earlier).variant == uuid.RFC_4122
    assert earlier < later
    assert int(earlier.replace("-", "")[:12], 16) == 1_795_900_000_000


@pytest.mark.parametrize(
    ("ms", "text"),
    [(0, "1970-01-01T00:00:00.000Z"), (1_795_900_000_123, "2026-11-28T21:06:40.123Z")],
    ids=["epoch", "milliseconds-kept"],
)
def test_times_are_utc_milliseconds(ms: int, text: str) -> None:
    assert format_time_ms(ms) == text
    assert parse_time_ms(text) == ms


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=253_402_300_799_999))  # up to 9999-12-31
def test_time_text_round_trips_for_every_millisecond(ms: int) -> None:
    assert parse_time_ms(format_time_ms(ms)) == ms


def test_seal_commits_to_personal_fields_with_fresh_salts() -> None:
    entry = make_entry(3)
    a, b = seal(entry), seal(entry)
    assert a.body != b.body  # fresh salts, so different commitments
    _, body = parse_leaf(leaf_bytes(a.body, 0))
    value, salt = a.personal["user_id"]
    assert value == "ed-nurse-3"
    assert body["commitments"]["user_id"] == commitment(value, salt)
    assert body["commitments"]["justification"] is None  # not a break-glass entry
    assert "justification" not in a.personal


def test_search_columns_are_derived_from_the_body() -> None:
    sealed = seal(make_entry(10))
    _, body = parse_leaf(leaf_bytes(sealed.body, 7))
    assert search_columns(body) == sealed.search
    assert sealed.search.break_glass is True
    assert sealed.search.agreement_id == "ISA-SAFEGUARDING-CHILDREN"


def test_leaf_bytes_are_the_rfc8785_form_of_entry_and_index() -> None:
    sealed = seal(make_entry(1))
    leaf = leaf_bytes(sealed.body, 42)
    index, body = parse_leaf(leaf)
    assert index == 42
    assert rfc8785.dumps({"entry": body, "index": 42}) == leaf


@pytest.mark.parametrize(
    "leaf",
    [b"[]", b'{"entry":{},"index":"1"}', b'{"entry":[],"index":1}', b'{"index":1}', b"\xff"],
    ids=["not-object", "string-index", "entry-not-object", "no-entry", "not-utf8"],
)
def test_foreign_leaves_are_refused(leaf: bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - several messages, one meaning
        parse_leaf(leaf)


JSON_SIMPLE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(alphabet=st.characters(max_codepoint=127), max_size=8), children)
    ),
    max_leaves=20,
)
JSON_ANY = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(exclude_categories=["Cs"])),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(alphabet=st.characters(exclude_categories=["Cs"])), children)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(JSON_SIMPLE)
def test_fast_canonical_form_is_rfc8785(value: Any) -> None:
    assert canonical_json(value, simple=True) == rfc8785.dumps(value)


@settings(max_examples=200, deadline=None)
@given(JSON_ANY)
def test_canonical_form_is_rfc8785_for_any_json(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


def test_float_obligations_take_the_full_rfc8785_path() -> None:
    sealed = seal(make_entry(1, obligations=({"retain_days": 1.5e3},)))
    _, body = parse_leaf(leaf_bytes(sealed.body, 0))
    assert rfc8785.dumps(body) == sealed.body
    assert b'"retain_days":1500' in sealed.body


def test_entries_that_are_not_json_are_refused() -> None:
    with pytest.raises(AuditEntryError, match="not a JSON value"):
        seal(AuditEntry(kind="admin", details={"when": object()}))
    with pytest.raises(AuditEntryError, match="not canonicalisable"):
        seal(AuditEntry(kind="admin", details={"bad": "\ud800"}))
    json.dumps(seal(AuditEntry(kind="admin")).search.__dict__)
