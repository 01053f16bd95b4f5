"""Reading agreement, dataset and revocation documents from YAML text, with file, place and reason.

Strict on purpose: duplicate keys, YAML merge keys and unknown keys are errors (PyYAML would keep
the last duplicate silently; pydantic would drop unknown keys by default). Places are written as
dotted and indexed paths (``flows[0].permitted_fields[2]``), with the line when known.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from broker.agreements.model import Agreement, Revocation
from broker.agreements.register import DatasetEntry

Path_ = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Problem:
    """One reason a document is refused: which file, where in it, and why."""

    file: str
    place: str
    reason: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.place or '(document)'}: {self.reason}"


def format_place(path: Sequence[str | int]) -> str:
    """``("flows", 0, "permitted_fields", 2)`` -> ``flows[0].permitted_fields[2]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif out:
            out += f".{part}" if part.replace("_", "").isalnum() else f"[{part!r}]"
        else:
            out = part
    return out


class _Document:
    """Plain data of a YAML document plus the line of every place in it."""

    def __init__(self, data: Any, lines: dict[Path_, int]) -> None:
        self.data = data
        self.lines = lines

    def line(self, path: Sequence[str | int]) -> int | None:
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())


class DocumentError(Exception):
    """The text is not a well-formed document; carries every problem found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = tuple(problems)


def load_yaml(text: str, file: str) -> _Document:
    """Parse one YAML document into plain data, refusing duplicate and merge keys.

    Raises :class:`DocumentError` with the line of the first problem.
    """
    # The C loader (libyaml) when available: the same nodes and marks, several times faster.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    lines: dict[Path_, int] = {}
    try:
        node = loader.get_single_node()
        if node is None:
            raise DocumentError([Problem(file, "", "the file is empty")])

        def build(n: yaml.Node, path: Path_) -> Any:
            lines[path] = n.start_mark.line + 1
            if isinstance(n, yaml.MappingNode):
                result: dict[Any, Any] = {}
                for key_node, value_node in n.value:
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        raise DocumentError(
                            [
                                Problem(
                                    file,
                                    format_place(path),
                                    "YAML merge keys ('<<') are not allowed",
                                    key_node.start_mark.line + 1,
                                )
                            ]
                        )
                    key = loader.construct_object(key_node, deep=True)
                    if not isinstance(key, str):
                        key = str(key)
                    if key in result:
                        raise DocumentError(
                            [
                                Problem(
                                    file,
                                    format_place((*path, key)),
                                    f"duplicate key {key!r}",
                                    key_node.start_mark.line + 1,
                                )
                            ]
                        )
                    result[key] = build(value_node, (*path, key))
                return result
            if isinstance(n, yaml.SequenceNode):
                return [build(item, (*path, i)) for i, item in enumerate(n.value)]
            return loader.construct_object(n, deep=True)

        data = build(node, ())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise DocumentError([Problem(file, "", f"not valid YAML: {e}", line)]) from e
    finally:
        loader.dispose()
    return _Document(data, lines)


def _reason(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key (not part of the schema; check the spelling)"
    if kind == "missing":
        return "required key is missing"
    return str(error["msg"])


def parse_model(doc: _Document, model: type[M], file: str) -> M:
    """Validate plain data against ``model``; raises :class:`DocumentError` naming every problem."""
    try:
        return model.model_validate(doc.data)
    except ValidationError as e:
        errors = e.errors()
        # An invalid item also makes pydantic report its container as too short: noise.
        errors = [
            err
            for err in errors
            if not (
                err["type"] == "too_short"
                and any(
                    len(o["loc"]) > len(err["loc"]) and o["loc"][: len(err["loc"])] == err["loc"]
                    for o in errors
                )
            )
        ]
        problems = [
            Problem(file, format_place(err["loc"]), _reason(err), doc.line(err["loc"]))
            for err in errors
        ]
        raise DocumentError(problems) from e


_KINDS: dict[str, type[BaseModel]] = {
    "agreement": Agreement,
    "dataset": DatasetEntry,
    "revocation": Revocation,
}


Document = Agreement | DatasetEntry | Revocation


def parse_document(text: str, file: str) -> Document:
    """Parse any of the three document kinds, chosen by the top-level ``kind`` key.

    Raises :class:`DocumentError` naming every problem.
    """
    return parse_document_with_lines(text, file)[0]


def parse_document_with_lines(text: str, file: str) -> tuple[Document, dict[str, int]]:
    """:func:`parse_document`, plus the line of every place (``flows[0].dataset`` -> 61)."""
    doc = load_yaml(text, file)
    if not isinstance(doc.data, dict):
        raise DocumentError([Problem(file, "", "the document must be a mapping")])
    kind = doc.data.get("kind")
    model = _KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise DocumentError(
            [
                Problem(
                    file,
                    "kind",
                    f"kind must be one of {sorted(_KINDS)}, not {kind!r}",
                    doc.line(("kind",)),
                )
            ]
        )
    parsed = parse_model(doc, model, file)
    assert isinstance(parsed, Agreement | DatasetEntry | Revocation)
    return parsed, {format_place(path): line for path, line in doc.lines.items()}


def with_lines(problems: Sequence[Problem], lines: Mapping[str, int]) -> list[Problem]:
    """``problems`` with the line of their place filled in where it is known."""
    return [
        p if p.line is not None else Problem(p.file, p.place, p.reason, lines.get(p.place))
        for p in problems
    ]
