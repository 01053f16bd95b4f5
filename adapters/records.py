"""Record shapes (pure): flat catalogue values <-> the nested record an adapter returns, and
the comparison a verification question makes.

A record is nested dicts keyed by the segments of dotted catalogue names:
``{"name.family": "Okafor"}`` becomes ``{"name": {"family": "Okafor"}}``. A repeating group (the
documents of a person) is a list of such records under one key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

Record = dict[str, Any]

_SPACES = re.compile(r"\s+")


def nest(flat: Mapping[str, Any]) -> Record:
    """Nest ``{"a.b": 1, "a.c": 2}`` into ``{"a": {"b": 1, "c": 2}}``.

    Raises ValueError when one name is a prefix of another (``a`` and ``a.b``): a catalogue
    names leaves only.
    """
    record: Record = {}
    for name in sorted(flat):
        node = record
        *parents, leaf = name.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ValueError(f"field {name!r} is below a leaf")
            node = child
        if leaf in node:
            raise ValueError(f"field {name!r} is also a group")
        node[leaf] = flat[name]
    return record


def flatten(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """The inverse of :func:`nest` (lists are leaves)."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def project(record: Mapping[str, Any], fields: Iterable[str]) -> Record:
    """Only ``fields`` of ``record`` (nested shape kept; lists projected element-wise)."""
    wanted = set(fields)
    out: Record = {}
    for key, value in record.items():
        below = {f.split(".", 1)[1] for f in wanted if f.startswith(f"{key}.")}
        if key in wanted:
            out[key] = value
        elif below and isinstance(value, Mapping):
            out[key] = project(value, below)
        elif below and isinstance(value, list):
            out[key] = [project(item, below) for item in value if isinstance(item, Mapping)]
    return out


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
