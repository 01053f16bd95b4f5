"""A small, pure subset of FHIRPath for mapping FHIR JSON to catalogue fields.

Supported: ``Resource.a.b`` (collections flatten), ``a[0]``, ``where(key='value')`` with a dotted
key, ``first()``, ``last()``, ``join('sep')``, ``exists()``, ``count()``. Examples::

    Patient.identifier.where(system='https://fhir.nhs.uk/Id/nhs-number').value
    Patient.name.where(use='usual').first().given.first()
    Patient.address.where(use='home').first().line.join(', ')
    Encounter.hospitalization.dischargeDisposition.text

:func:`evaluate` returns ``None`` for an empty result, the item for one, a list for several.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

_STEP = re.compile(
    r"\.(?:(?P<fn>[A-Za-z]+)\((?P<arg>[^)]*)\)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:\[(?P<idx>\d+)\])?)"
)
_WHERE = re.compile(r"\s*(?P<key>[A-Za-z_][A-Za-z0-9_.]*)\s*=\s*'(?P<value>[^']*)'\s*")
_QUOTED = re.compile(r"\s*'(?P<value>[^']*)'\s*")
_FUNCTIONS = {"where", "first", "last", "join", "exists", "count"}


@dataclass(frozen=True)
class Step:
    kind: str  # "name" or a function name
    name: str = ""
    index: int | None = None
    key: str = ""
    value: str = ""


@dataclass(frozen=True)
class Path:
    resource_type: str
    steps: tuple[Step, ...]


@lru_cache(maxsize=1024)
def parse(text: str) -> Path:
    """Parse ``text``; ValueError says where it stops making sense."""
    head, dot, _rest = text.partition(".")
    if not head.isidentifier() or not head[:1].isupper():
        raise ValueError(f"a path starts with a resource type: {text!r}")
    steps: list[Step] = []
    position = len(head)
    while position < len(text):
        match = _STEP.match(text, position)
        if match is None:
            raise ValueError(f"cannot parse {text!r} at {position}")
        position = match.end()
        if match["fn"] is not None:
            fn, arg = match["fn"], match["arg"]
            if fn not in _FUNCTIONS:
                raise ValueError(f"unsupported function {fn}() in {text!r}")
            if fn == "where":
                cond = _WHERE.fullmatch(arg)
                if cond is None:
                    raise ValueError(f"where() takes key='value' in {text!r}")
                steps.append(Step("where", key=cond["key"], value=cond["value"]))
            elif fn == "join":
                sep = _QUOTED.fullmatch(arg)
                if sep is None:
                    raise ValueError(f"join() takes a quoted separator in {text!r}")
                steps.append(Step("join", value=sep["value"]))
            else:
                if arg.strip():
                    raise ValueError(f"{fn}() takes no argument in {text!r}")
                steps.append(Step(fn))
        else:
            index = int(match["idx"]) if match["idx"] is not None else None
            steps.append(Step("name", name=match["name"], index=index))
    del dot
    return Path(head, tuple(steps))


def _children(items: list[Any], name: str) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if isinstance(item, dict) and name in item:
            value = item[name]
            if isinstance(value, list):
                out.extend(v for v in value if v is not None)
            elif value is not None:
                out.append(value)
    return out


def _dotted(item: Any, key: str) -> list[Any]:
    return _children([item], key) if "." not in key else _walk([item], key.split("."))


def _walk(items: list[Any], names: list[str]) -> list[Any]:
    for name in names:
        items = _children(items, name)
    return items


def evaluate_collection(resource: dict[str, Any], text: str) -> list[Any]:
    """The collection ``text`` selects from ``resource`` (empty if the type differs)."""
    path = parse(text)
    if resource.get("resourceType") != path.resource_type:
        return []
    items: list[Any] = [resource]
    for step in path.steps:
        if step.kind == "name":
            items = _children(items, step.name)
            if step.index is not None:
                items = items[step.index : step.index + 1]
        elif step.kind == "where":
            items = [i for i in items if step.value in {str(v) for v in _dotted(i, step.key)}]
        elif step.kind == "first":
            items = items[:1]
        elif step.kind == "last":
            items = items[-1:]
        elif step.kind == "join":
            items = [step.value.join(str(i) for i in items)] if items else []
        elif step.kind == "exists":
            items = [bool(items)]
        elif step.kind == "count":
            items = [len(items)]
    return items


def evaluate(resource: dict[str, Any], text: str) -> Any:
    """``None``, the one item, or a list (see module docstring)."""
    items = evaluate_collection(resource, text)
    if not items:
        return None
    return items[0] if len(items) == 1 else items
