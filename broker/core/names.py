"""What a caller's string or instant may be before it reaches the policy engine (pure).

Every engine must decide as OPA does (docs/policy.md, "The same decisions as OPA"). rego-cpp
(the embedded engine) differs from OPA on five kinds of input, so those never reach an engine:

1. whitespace: rego-cpp's ``trim_space`` strips ASCII whitespace only, Go's ``strings.TrimSpace``
   strips every ``unicode.IsSpace`` character. Free text (case reference, justification) is
   stripped here of what Go strips (:func:`trim_space`), and must keep at least
   :data:`FREE_TEXT_MIN_ALNUM` letters or digits (:func:`free_text_problem`);
2. ``"``, 3. control characters and 4. ``\\``: rego-cpp's JSON output leaves them unescaped.
   Every identifier (party, client, agreement, purpose, dataset, role, flow) matches the one
   :data:`IDENTIFIER_PATTERN`, which admits none of them; control and format characters (Unicode
   Cc, Cf) are refused in free text too (:func:`control_or_format`);
5. far instants: beyond 64-bit nanoseconds an engine errs where OPA decides. Instants lie in
   [:data:`EARLIEST`, :data:`LATEST`) (:func:`instant_problem`).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Final

IDENTIFIER_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
"""Party, client, agreement, purpose, dataset, role and flow ids: 1-100 letters, digits, '.', '_',
'-', starting with a letter or digit. For pydantic (``Field(pattern=...)``, whose ``$`` is the end
of the text); Python code uses :func:`is_identifier` (Python's ``$`` also matches before a final
newline)."""
IDENTIFIER_RULE: Final = "1-100 letters, digits, '.', '_', '-', starting with a letter or digit"
_IDENTIFIER: Final = re.compile(IDENTIFIER_PATTERN[1:-1])

FIELD_NAME_PATTERN: Final = r"^[a-z0-9_]+(\.[a-z0-9_]+)*(\.\*)?$"
"""A dotted catalogue name, or ``prefix.*``, as the policy input carries them."""
_FIELD_NAME: Final = re.compile(FIELD_NAME_PATTERN[1:-1])

GO_SPACE: Final = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000"
)
"""What Go's ``unicode.IsSpace`` holds true (and ``strings.TrimSpace`` strips): OPA's
``trim_space``."""
_GO_SPACE_TEXT: Final = "".join(sorted(GO_SPACE))

FREE_TEXT_MIN_ALNUM: Final = 3
"""A case reference or justification has at least this many letters or digits."""
_PRINTABLE_ASCII: Final = re.compile(r"[\x20-\x7e]*")
_TEXT_CONTROLS: Final = frozenset("\t\n\r")
"""Control characters free text may hold: tab and line breaks (whitespace to every engine)."""

EARLIEST: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST: Final = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)
"""Instants a request may be decided at: [EARLIEST, LATEST), well inside 64-bit nanoseconds
since the epoch (which end in 2262)."""


def is_identifier(value: str) -> bool:
    """Whether ``value`` matches :data:`IDENTIFIER_PATTERN` exactly."""
    return _IDENTIFIER.fullmatch(value) is not None


def is_field_name(value: str) -> bool:
    """Whether ``value`` matches :data:`FIELD_NAME_PATTERN` exactly."""
    return _FIELD_NAME.fullmatch(value) is not None


def trim_space(value: str) -> str:
    """``value`` without leading and trailing whitespace as Go's ``strings.TrimSpace`` sees it."""
    return value.strip(_GO_SPACE_TEXT)


def control_or_format(value: str, *, allow: frozenset[str] = frozenset()) -> bool:
    """Whether ``value`` holds a control (Cc) or format (Cf) character not in ``allow``."""
    if _PRINTABLE_ASCII.fullmatch(value):
        return False  # the common case, without a Python loop over the text
    return any(
        (char < " " or char >= "\x7f")
        and char not in allow
        and unicodedata.category(char) in ("Cc", "Cf")
        for char in value
    )


def free_text_problem(value: str) -> str | None:
    """Why free text (a case reference or justification, already :func:`trim_space`-d) is
    refused, or ``None``: control or format characters (tab and line breaks excepted), a
    backslash (rego-cpp reads strings of its input as JSON escapes: ``\\1`` is an engine error
    where OPA decides), or fewer than :data:`FREE_TEXT_MIN_ALNUM` letters or digits."""
    if control_or_format(value, allow=_TEXT_CONTROLS):
        return "must not hold control or format characters"
    if "\\" in value:
        return "must not hold a backslash"
    if sum(1 for char in value if char.isalnum()) < FREE_TEXT_MIN_ALNUM:
        return f"needs at least {FREE_TEXT_MIN_ALNUM} letters or digits"
    return None


def instant_problem(value: dt.datetime) -> str | None:
    """Why an instant is refused, or ``None``: naive, or outside [EARLIEST, LATEST)."""
    if value.tzinfo is None or value.utcoffset() is None:
        return "must carry a time zone"
    if not EARLIEST <= value < LATEST:
        return f"must lie from {EARLIEST:%Y-%m-%d} to before {LATEST:%Y-%m-%d} (UTC)"
    return None
