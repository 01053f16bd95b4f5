"""An agreement written by a drafter (YAML text or a JSON object): capped, parsed and validated,
every problem named by place. Pure (the register and the known parties are passed in).

Caps: the text is at most :data:`MAX_YAML_BYTES`, holds at most :data:`MAX_ALIASES` YAML aliases
(a few aliases can make a small text expand enormously) and nests at most :data:`MAX_DEPTH`
deep. Parsing and validation are those of the agreements folder (``parsing.py``,
``validation.py``): a draft that passes here is one the loader accepts.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import yaml

from broker.agreements.model import Agreement
from broker.agreements.parsing import (
    DocumentError,
    Problem,
    parse_document_with_lines,
    with_lines,
)
from broker.agreements.register import Register
from broker.agreements.validation import check_agreement
from broker.core.errors import FieldProblem, InvalidInput

MAX_YAML_BYTES = 256 * 1024
MAX_ALIASES = 20
MAX_DEPTH = 30
LABEL = "draft"


def _refuse(detail: str, problems: Collection[Problem]) -> InvalidInput:
    return InvalidInput(
        detail,
        [
            FieldProblem(
                f"{p.place or '(document)'}" + (f" (line {p.line})" if p.line else ""), p.reason
            )
            for p in problems
        ],
    )


def check_caps(text: str) -> None:
    """Raise :class:`InvalidInput` when ``text`` is over a cap (size, aliases, depth)."""
    if len(text.encode("utf-8")) > MAX_YAML_BYTES:
        raise InvalidInput(f"the agreement is larger than {MAX_YAML_BYTES} bytes")
    aliases = depth = deepest = 0
    try:
        for event in yaml.parse(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
            if isinstance(event, yaml.AliasEvent):
                aliases += 1
                if aliases > MAX_ALIASES:
                    raise InvalidInput(f"the agreement uses more than {MAX_ALIASES} YAML aliases")
            elif isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                deepest = max(deepest, depth)
                if deepest > MAX_DEPTH:
                    raise InvalidInput(f"the agreement nests deeper than {MAX_DEPTH} levels")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise _refuse("the agreement is not valid YAML", [Problem(LABEL, "", str(e), line)]) from e


def yaml_of(document: Mapping[str, Any]) -> str:
    """YAML text of an agreement sent as a JSON object (the form's route)."""
    return yaml.safe_dump(dict(document), sort_keys=False, allow_unicode=True)


def read_agreement(
    text: str,
    *,
    register: Register,
    unverified_datasets: Mapping[str, str],
    known_parties: Collection[str],
) -> Agreement:
    """The agreement ``text`` holds, or :class:`InvalidInput` naming every problem by place."""
    check_caps(text)
    try:
        doc, lines = parse_document_with_lines(text, LABEL)
    except DocumentError as e:
        raise _refuse("the agreement is not valid", e.problems) from e
    if not isinstance(doc, Agreement):
        raise _refuse(
            "the document is not an agreement", [Problem(LABEL, "kind", "expected agreement")]
        )
    found = check_agreement(
        doc,
        LABEL,
        register=register,
        unverified_datasets=unverified_datasets,
        known_parties=known_parties,
    )
    if found:
        raise _refuse("the agreement is not valid", with_lines(found, lines))
    return doc
