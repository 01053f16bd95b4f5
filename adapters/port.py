"""The source adapter port: what the exchange service asks of any source system.

An adapter serves one source system (a FHIR server, a database, a REST service, a document store)
and every dataset bound to it. It promises:

* :meth:`SourceAdapter.fetch` returns the nested record of the asked catalogue fields only
  (absent values are ``None``), for exactly the subject asked about;
* :meth:`SourceAdapter.verify` answers whether the source holds every claim, and returns no value
  of the record, only its stable key at the source (the binding's ``key``, else every identifier
  the record holds), for the broker to count answers per record whatever identifier was asked;
* :meth:`SourceAdapter.exists` answers whether the source holds the subject at all (a cheap
  lookup of the record's key, or a document index; no value leaves the adapter);
* :meth:`SourceAdapter.stream_document` yields a document's bytes, whose SHA-256 is checked;
* the wrong-person guard: the identifier in the record the source returned equals the one asked
  for, and a search that matches several people raises :class:`MultipleMatches`;
* only errors of :mod:`adapters.errors` escape (plus :class:`InvalidInput` for a subject type the
  dataset does not accept, and :class:`BindingError` for a field the binding cannot map).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Protocol, runtime_checkable

from adapters.bindings import DatasetBinding
from adapters.errors import (
    BindingError,
    CircuitOpen,
    MultipleMatches,
    SourceBadData,
    SourceError,
    SourceTimeout,
    SourceUnavailable,
    SubjectNotFound,
    WrongSubject,
)
from adapters.records import Verification
from broker.core.identifiers import SubjectId
from broker.core.projection import Record

__all__ = [
    "BindingError",
    "CircuitOpen",
    "MultipleMatches",
    "Record",
    "SourceAdapter",
    "SourceBadData",
    "SourceError",
    "SourceTimeout",
    "SourceUnavailable",
    "SubjectNotFound",
    "Verification",
    "WrongSubject",
]


@runtime_checkable
class SourceAdapter(Protocol):
    """One source system's connector (see module docstring for its promises)."""

    kind: str

    async def fetch(
        self, binding: DatasetBinding, subject: SubjectId, fields: Sequence[str]
    ) -> Record:
        """The record of ``subject`` in ``binding.dataset`` with only ``fields`` (nested)."""
        ...

    async def verify(
        self, binding: DatasetBinding, subject: SubjectId, claims: Mapping[str, object]
    ) -> Verification:
        """Whether the source holds every claim (field -> value) for ``subject``, and the
        stable key of the record that answered."""
        ...

    async def exists(self, binding: DatasetBinding, subject: SubjectId) -> bool:
        """Whether the source holds ``subject`` in ``binding.dataset`` (False: not found; a
        failing source raises as for :meth:`fetch`)."""
        ...

    def stream_document(
        self, binding: DatasetBinding, subject: SubjectId, sha256: str
    ) -> AsyncIterator[bytes]:
        """The content of ``subject``'s document with this SHA-256, checked as it is read."""
        ...

    async def aclose(self) -> None:
        """Release pooled connections."""
        ...
