"""What may reach the policy engine: the one identifier pattern, free text, instants."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import BaseModel, ValidationError

from broker.agreements.model import Identifier
from broker.auth.registry import valid_binding
from broker.core import names
from broker.core.errors import InvalidInput


def test_go_space_is_unicode_white_space_less_the_separators_go_leaves() -> None:
    # Go's unicode.IsSpace: the Latin-1 spaces and the White_Space property; Python's isspace adds
    # U+001C-U+001F (information separators), which Go does not strip (and names.py refuses: Cc).
    python = {chr(c) for c in range(0x110000) if chr(c).isspace()}
    assert python - {"\x1c", "\x1d", "\x1e", "\x1f"} == names.GO_SPACE
    assert "\u200b" not in names.GO_SPACE  # zero width space: a format character, refused


def test_trim_space_strips_the_ends_only() -> None:
    assert names.trim_space("\u00a0\u3000CASE\u2003 1\u2028\x85") == "CASE\u2003 1"


@pytest.mark.parametrize(
    ("text", "problem"),
    [("ABC", None), ("a-1-b", None), ("line one\nline two", None), ("ab", "letters or digits"),
     ("\u200bABC", "control or format"), ("AB\x01C", "control or format"),
     ("AB\\C", "backslash"), ('say "ABC"', None), ("é1ñ", None)],
)  # fmt: skip
def test_free_text(text: str, problem: str | None) -> None:
    found = names.free_text_problem(text)
    assert (found is None) if problem is None else (problem in (found or ""))


@pytest.mark.parametrize(
    "value",
    ["R9Z", "ISA-SAFEGUARDING-CHILDREN", "ccc.child-protection", "a", "x" * 100],
)
def test_identifiers(value: str) -> None:
    assert names.is_identifier(value)


@pytest.mark.parametrize(
    "value",
    ["", "-a", "a:b", 'a"b', "a\\b", "a\x01", "R9Z\n", "a\u200b", "a b", "x" * 101, "é"],
)
def test_not_identifiers(value: str) -> None:
    assert not names.is_identifier(value)


def test_every_entry_point_uses_the_one_pattern() -> None:
    class Agreement(BaseModel):
        id: Identifier

    for value in ("R9Z\n", 'a"b', "a\\b"):
        with pytest.raises(ValidationError):
            Agreement(id=value)
        with pytest.raises(InvalidInput):
            valid_binding(value, None, None)
    assert valid_binding("gp", "ISA-X", None).role == "gp"


@pytest.mark.parametrize(
    ("when", "ok"),
    [
        (dt.datetime(1970, 1, 1, tzinfo=dt.UTC), True),
        (dt.datetime(2199, 12, 31, tzinfo=dt.UTC), True),
        (dt.datetime(2200, 1, 1, tzinfo=dt.UTC), False),
        (dt.datetime(1969, 12, 31, tzinfo=dt.UTC), False),
        (dt.datetime(2026, 1, 1), False),
    ],
)
def test_instants(when: dt.datetime, ok: bool) -> None:
    assert (names.instant_problem(when) is None) is ok
