"""The comparison a verification question makes, and its answer with the record's key (pure).

Record shapes (nesting, flattening, projection) live in ``broker/core/projection.py``, shared with
the exchange, so an adapter and the broker cut records by one rule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

_SPACES = re.compile(r"\s+")


def comparable(name: str, value: object) -> str | None:
    """The form in which a claimed value and a held value are compared.

    Case and runs of spaces do not matter; postcodes ignore spaces entirely; dates compare as ISO
    dates; booleans and numbers by value. ``None`` means "the source holds nothing".
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (int, Decimal, float)):
        return format(Decimal(str(value)).normalize(), "f")
    text = _SPACES.sub(" ", str(value).strip()).casefold()
    if name.endswith("postcode"):
        text = text.replace(" ", "")
    if text in {"true", "false"}:
        return text
    return text


def claims_hold(held: Mapping[str, Any], claims: Mapping[str, object]) -> bool:
    """True when every claim equals the held value (see :func:`comparable`). No claims: False."""
    if not claims:
        return False
    for name, claimed in claims.items():
        have = comparable(name, held.get(name))
        if have is None or have != comparable(name, claimed):
            return False
    return True


@dataclass(frozen=True)
class Verification:
    """A verification answer: whether the claims hold, and the stable key of the record that
    answered (the broker counts answers per record by it, pseudonymised; never released)."""

    match: bool
    record_key: str


def record_key(held: Mapping[str, Any], key_fields: Sequence[str]) -> str | None:
    """The record's stable key from the values read for ``key_fields``
    (``DatasetBinding.key_fields`` in adapters/bindings.py); None when the record holds none."""
    parts = [f"{name}={held[name]}" for name in key_fields if held.get(name) not in (None, "")]
    return "|".join(parts) or None
