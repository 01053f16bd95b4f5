"""An unsigned draft agreement given as YAML text (an upload, a paste, a request body). Pure.

The text is capped in size and in YAML aliases (a few kilobytes of aliases can expand to
gigabytes), parsed like a file of the agreements folder, and checked against the register and the
known parties; every problem is named by its place. A draft is never served as policy: it is
compiled in memory for a dry run or an impact report only.
"""

from __future__ import annotations

from collections.abc import Collection

import yaml

from broker.agreements.model import Agreement
from broker.agreements.parsing import DocumentError, parse_document_with_lines, with_lines
from broker.agreements.register import Register
from broker.agreements.validation import check_agreement
from broker.core.errors import FieldProblem, InvalidInput

MAX_DRAFT_BYTES = 256 * 1024
MAX_DRAFT_ALIASES = 50
DRAFT_FILE = "draft"


def _problems(reasons: Collection[object]) -> list[FieldProblem]:
    out = []
    for p in reasons:
        place = getattr(p, "place", "") or "(document)"
        line = getattr(p, "line", None)
        where = f"{place} (line {line})" if line else place
        out.append(FieldProblem(where, str(getattr(p, "reason", p))))
    return out


def _count_aliases(text: str) -> int:
    count = 0
    try:
        for token in yaml.scan(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
            if isinstance(token, yaml.AliasToken):
                count += 1
                if count > MAX_DRAFT_ALIASES:
                    break
    except yaml.YAMLError:
        return 0  # the parser names the problem and its line
    return count


def parse_draft(text: str, *, register: Register, known_parties: Collection[str]) -> Agreement:
    """The draft agreement in ``text``. Raises :class:`InvalidInput` naming every problem."""
    if len(text.encode("utf-8")) > MAX_DRAFT_BYTES:
        raise InvalidInput(f"the draft is larger than {MAX_DRAFT_BYTES} bytes")
    if not text.strip():
        raise InvalidInput("the draft is empty")
    if _count_aliases(text) > MAX_DRAFT_ALIASES:
        raise InvalidInput(f"the draft has more than {MAX_DRAFT_ALIASES} YAML aliases")
    try:
        doc, lines = parse_document_with_lines(text, DRAFT_FILE)
    except DocumentError as e:
        raise InvalidInput("the draft is not a valid agreement", _problems(e.problems)) from e
    if not isinstance(doc, Agreement):
        raise InvalidInput(
            "the draft is not an agreement", [FieldProblem("kind", "expected kind: agreement")]
        )
    found = check_agreement(doc, DRAFT_FILE, register=register, known_parties=known_parties)
    if found:
        raise InvalidInput(
            "the draft is not a valid agreement", _problems(with_lines(found, lines))
        )
    return doc
