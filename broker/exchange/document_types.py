"""Which document types a request on a dataset of typed documents would release, read from the
source before the consent check (a consent may be narrowed to some types: docs/consent.md).

Only the documents' types (and, for ``document`` mode, their hashes) are read, never content;
nothing read here is released or logged. A subject the source does not hold has no documents
(the fetch after the decision answers 404 as usual); a failing source raises (502/504) before
the decision, since the consent cannot be checked without it.
"""

from __future__ import annotations

from typing import Final

from adapters.errors import SubjectNotFound
from broker.core.identifiers import SubjectId
from broker.exchange.ports import SourcesPort
from broker.exchange.request import ExchangeRequest

TYPE_FIELD: Final = "document.type"
SHA256_FIELD: Final = "document.sha256"


async def requested_document_types(
    sources: SourcesPort, request: ExchangeRequest, subject: SubjectId
) -> tuple[str, ...]:
    """The sorted types of the subject's documents the request would release: in ``document``
    mode the one named by its hash; otherwise every document of the subject (``fetch``,
    ``attest`` and ``verify`` all read every document)."""
    named = request.document_sha256 if request.mode == "document" else None
    fields = [TYPE_FIELD, SHA256_FIELD] if named is not None else [TYPE_FIELD]
    try:
        record = await sources.fetch(request.dataset, subject, fields)
    except SubjectNotFound:
        return ()
    documents = record.get("document")
    if isinstance(documents, dict):
        documents = [documents]
    types = {
        str(d.get("type"))
        for d in documents or []
        if isinstance(d, dict) and (named is None or d.get("sha256") == named)
    }
    return tuple(sorted(types))
