"""REST/JSON adapter (partner systems such as police or schools), mapped by JSON pointer.

A fetch is ``GET <endpoint><options.path>?<param>=<identifier>``; the answer holds a list of
matches at ``options.results`` (a JSON pointer, ``""`` for a single object). Exactly one match
must carry the asked identifier at its identifier pointer. Binding::

    sources:  {wcp-police: {kind: rest, endpoint: "http://host"}}
    datasets:
      wcp.police-concerns:
        options: {path: /api/v1/concerns, results: /results,
                  query: {nhs_number: nhs_number, person_id: person_id}, types: {...}}
        identifiers: {nhs_number: /subject/nhs_number, person_id: /subject/person_id}
        fields: {concerns.count: /concerns/count}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adapters.base import guard_identity, guard_single
from adapters.bindings import DatasetBinding
from adapters.errors import BindingError, SourceBadData, SubjectNotFound
from adapters.http import HttpAdapter
from adapters.values import to_catalogue
from broker.core.identifiers import SubjectId

_MISSING = object()


def resolve_pointer(document: Any, pointer: str) -> Any:
    """RFC 6901: the value at ``pointer`` or ``_MISSING``; ValueError for a malformed pointer."""
    if pointer == "":
        return document
    if not pointer.startswith("/"):
        raise ValueError(f"a JSON pointer starts with '/': {pointer!r}")
    node = document
    for raw in pointer[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict):
            if token not in node:
                return _MISSING
            node = node[token]
        elif isinstance(node, list):
            if not token.isdigit() or int(token) >= len(node):
                return _MISSING
            node = node[int(token)]
        else:
            return _MISSING
    return node


class RestAdapter(HttpAdapter):
    kind = "rest"

    async def read(
        self, binding: DatasetBinding, subject: SubjectId, fields: Sequence[str]
    ) -> dict[str, Any]:
        where = {"dataset": binding.dataset, "source": self.source.name}
        path = str(binding.options.get("path", ""))
        param = (binding.options.get("query") or {}).get(subject.type)
        if not path.startswith("/") or not param:
            raise BindingError(f"dataset {binding.dataset}: options.path and options.query needed")
        body = await self.get_json(binding, path, {str(param): subject.value}, what="source")
        try:
            results = resolve_pointer(body, str(binding.options.get("results", "")))
        except ValueError as e:
            raise BindingError(f"dataset {binding.dataset}: {e}") from e
        if results is _MISSING:
            raise SourceBadData("answer has no results where the binding expects them", **where)
        matches = results if isinstance(results, list) else [results]
        if not all(isinstance(m, dict) for m in matches):
            raise SourceBadData("answer's results are not JSON objects", **where)
        if not matches:
            raise SubjectNotFound("no record for the subject", **where)
        guard_single(binding, len(matches))
        match = matches[0]
        found = resolve_pointer(match, binding.identifiers[subject.type])
        guard_identity(binding, subject, None if found is _MISSING else found)
        values: dict[str, Any] = {}
        for field in fields:
            try:
                raw = resolve_pointer(match, binding.source_path(field))
            except ValueError as e:
                raise BindingError(f"dataset {binding.dataset}, field {field}: {e}") from e
            values[field] = to_catalogue(binding, field, None if raw is _MISSING else raw)
        return values
