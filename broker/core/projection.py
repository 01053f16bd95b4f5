"""Projection: a source record cut down to the released fields. Pure.

Field names are dotted paths into the dataset's catalogue (``child_protection_plan.status``).
The released record keeps the nested shape; a path that the record does not have is simply
absent (the source holds no value). Anything not named is dropped, whatever the source sent:
this is the last line of minimisation, so it never trusts that a source honoured the field list.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

_MISSING = object()


def _lookup(record: Mapping[str, Any], path: list[str]) -> Any:
    node: Any = record
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def project(record: Mapping[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    """Only ``fields`` of ``record``, nested shape kept.

    A released path whose value is itself an object releases that whole object only when the
    path names it exactly (``address`` releases all of ``address``); wildcards are resolved to
    concrete catalogue names before projection, never here.
    """
    released: dict[str, Any] = {}
    for field in sorted(set(fields)):
        parts = field.split(".")
        if not all(parts):
            continue
        value = _lookup(record, parts)
        if value is _MISSING:
            continue
        node = released
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = _copy(value)
    return released


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def flatten(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted paths of every leaf (a non-object value) of ``record``."""
    leaves: dict[str, Any] = {}
    for key, value in record.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            leaves.update(flatten(value, f"{path}."))
        else:
            leaves[path] = value
    return leaves


@dataclass(frozen=True)
class WithheldField:
    field: str
    reason: str
