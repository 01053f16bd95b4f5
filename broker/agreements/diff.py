"""Everything that differs between two versions of an agreement. Pure, no I/O.

The diff walks the signed content of both documents (:meth:`Agreement.content`: every key, with
defaults filled in), so no field of the model can be missed: parties (roles, signatories),
purposes, flows (recipients, purposes, requester roles, identity, lawful basis, conditions,
retention, break-glass, fields), the DPIA, dataset digests, dates, contacts and the free text.

Lists of objects that carry an identity (parties, purposes and flows by ``id``, contacts by party
and role) are matched by that identity, so reordering is no change and a new flow is one
``added`` change rather than a cascade. Lists of names (recipients, fields, roles, days...) are
compared as sets: each name gained or lost is one change.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from broker.agreements.model import Agreement
from broker.core.canonical import JSONValue

ChangeKind = Literal["added", "removed", "changed"]

_KEYS: Mapping[str, tuple[str, ...]] = {
    "parties": ("id",),
    "purposes": ("id",),
    "flows": ("id",),
    "contacts": ("party", "role"),
}
"""How items of a list of objects are matched between versions, by the list's key."""


@dataclass(frozen=True)
class Change:
    """One difference. ``path`` names the place, e.g.
    ``flows[ed-check].conditions.requester_roles``; for a name gained or lost in a list, ``new``
    (added) or ``old`` (removed) is that name."""

    path: str
    change: ChangeKind
    old: JSONValue = None
    new: JSONValue = None

    @property
    def section(self) -> str:
        """The top-level key the change is under (``flows``, ``parties``, ``validity``...)."""
        return self.path.split(".", 1)[0].split("[", 1)[0]

    def to_json(self) -> dict[str, JSONValue]:
        return {
            "path": self.path,
            "section": self.section,
            "change": self.change,
            "old": self.old,
            "new": self.new,
        }

    def line(self) -> str:
        """One line for people: ``+ path: value``, ``- path: value``, ``~ path: old -> new``."""
        if self.change == "added":
            return f"+ {self.path}: {_short(self.new)}"
        if self.change == "removed":
            return f"- {self.path}: {_short(self.old)}"
        return f"~ {self.path}: {_short(self.old)} -> {_short(self.new)}"


def _short(value: JSONValue, limit: int = 120) -> str:
    if isinstance(value, str):
        text = value
    elif value is None:
        text = "(none)"
    else:
        text = json.dumps(value, sort_keys=True, separators=(", ", ": "))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _key_of(item: Mapping[str, Any], names: tuple[str, ...]) -> str:
    return "/".join(str(item.get(n)) for n in names)


def _is_object_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _walk(path: str, old: Any, new: Any, out: list[Change], list_key: str) -> None:
    if old == new:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            sub = f"{path}.{key}" if path else key
            if key not in old:
                out.append(Change(sub, "added", None, new[key]))
            elif key not in new:
                out.append(Change(sub, "removed", old[key], None))
            else:
                _walk(sub, old[key], new[key], out, key)
        return
    if isinstance(old, list) and isinstance(new, list):
        names = _KEYS.get(list_key)
        if names is not None and (_is_object_list(old) or _is_object_list(new)):
            before = {_key_of(v, names): v for v in old}
            after = {_key_of(v, names): v for v in new}
            for key in sorted(set(before) | set(after)):
                sub = f"{path}[{key}]"
                if key not in before:
                    out.append(Change(sub, "added", None, after[key]))
                elif key not in after:
                    out.append(Change(sub, "removed", before[key], None))
                else:
                    _walk(sub, before[key], after[key], out, "")
            return
        if all(not isinstance(v, dict | list) for v in (*old, *new)):
            gone = [v for v in old if v not in new]
            came = [v for v in new if v not in old]
            out.extend(Change(path, "removed", v, None) for v in gone)
            out.extend(Change(path, "added", None, v) for v in came)
            if not gone and not came:  # same names, another order or count
                out.append(Change(path, "changed", old, new))
            return
    out.append(Change(path, "changed", old, new))


def diff_documents(old: Agreement, new: Agreement) -> tuple[Change, ...]:
    """Every difference between ``old`` and ``new``, in path order (sections alphabetical)."""
    out: list[Change] = []
    _walk("", old.content(), new.content(), out, "")
    return tuple(out)


def diff_json(changes: tuple[Change, ...]) -> list[dict[str, JSONValue]]:
    return [c.to_json() for c in changes]
