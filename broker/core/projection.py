"""Record shapes and projection: a source record cut down to the released fields. Pure.

A record is nested dicts keyed by the segments of dotted catalogue names
(``child_protection_plan.status``): ``{"name.family": "Okafor"}`` nests into
``{"name": {"family": "Okafor"}}``. A repeating group (the documents of a person, see
``adapters/documents.py``) is a list of such records under one key.

The released record keeps the nested shape; a path that the record does not have is simply
absent (the source holds no value). Anything not named is dropped, whatever the source sent:
this is the last line of minimisation, so it never trusts that a source honoured the field list.
The exchange (``broker/exchange/service.py``) and the source adapters (``adapters/``) both use
this module, so what an adapter returns and what the broker releases are cut by the same rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Record = dict[str, Any]


def project(record: Mapping[str, Any], fields: Iterable[str]) -> Record:
    """Only ``fields`` of ``record``, nested shape kept, copied (never aliasing the source).

    A released path whose value is itself an object or a list releases all of it only when the
    path names it exactly (``address`` releases all of ``address``); wildcards are resolved to
    concrete catalogue names before projection, never here.

    A list below a named path is a repeating group: ``document.type`` over
    ``{"document": [{"type": ..., "sha256": ...}, ...]}`` releases ``{"document": [{"type": ...},
    ...]}``. Each element is projected like a record, so no element releases more than the names
    allow, and an element (or a whole group) left with nothing is dropped rather than released
    empty. Releasing the whole list instead would leak every unnamed field of every element;
    releasing nothing would withhold what the agreement permits (the catalogue names the group's
    fields, ``document.type``, never the list itself).
    """
    wanted: dict[str, set[str]] = {}
    for field in set(fields):
        parts = field.split(".")
        if not all(parts):
            continue  # malformed: an empty segment names nothing
        wanted.setdefault(parts[0], set()).add(".".join(parts[1:]))
    released: Record = {}
    for key in sorted(wanted):
        if key not in record:
            continue
        below = wanted[key]
        value = record[key]
        if "" in below:
            released[key] = _copy(value)
            continue
        cut = _project_value(value, below)
        if cut:
            released[key] = cut
    return released


def _project_value(value: Any, below: set[str]) -> Any:
    if isinstance(value, Mapping):
        return project(value, below)
    if isinstance(value, list):
        items = (project(item, below) for item in value if isinstance(item, Mapping))
        return [item for item in items if item]
    return None  # a path through a leaf: the record does not have it


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def flatten(record: Mapping[str, Any], prefix: str = "") -> Record:
    """Dotted paths of every leaf of ``record``: the inverse of :func:`nest`.

    A leaf is a non-object value or an empty object (so an empty object the source holds is still
    seen); lists are leaves.
    """
    leaves: Record = {}
    for key, value in record.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            leaves.update(flatten(value, f"{path}."))
        else:
            leaves[path] = value
    return leaves


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


@dataclass(frozen=True)
class WithheldField:
    field: str
    reason: str
