"""What every adapter does the same way: check the request against the binding, run the read
through the source's breaker and retries, apply the wrong-person guard, nest the record.

A concrete adapter implements :meth:`BaseAdapter.read`, returning flat catalogue values for the
asked fields, and calls :func:`guard_identity` on what the source returned.
"""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from adapters.bindings import DatasetBinding, SourceConfig
from adapters.errors import (
    BindingError,
    MultipleMatches,
    SourceBadData,
    SourceError,
    SubjectNotFound,
    WrongSubject,
)
from adapters.records import Verification, claims_hold, record_key
from adapters.resilience import CircuitBreaker, Clock, call_resiliently
from broker.core.errors import FieldProblem, InvalidInput
from broker.core.identifiers import SubjectId
from broker.core.projection import Record, flatten, nest


def guard_identity(binding: DatasetBinding, subject: SubjectId, found: object) -> None:
    """The wrong-person guard: raise :class:`WrongSubject` unless ``found`` (the identifier read
    from the returned record) is exactly the identifier asked for."""
    if found is None or str(found).strip() != subject.value:
        raise WrongSubject(
            f"source returned a record whose {subject.type} is not the one asked for",
            dataset=binding.dataset,
            source=binding.source.name,
        )


def guard_single(binding: DatasetBinding, matches: int) -> None:
    """A search for one subject that matched several people is an error, never the first hit."""
    if matches > 1:
        raise MultipleMatches(
            f"source matched {matches} records for one subject",
            dataset=binding.dataset,
            source=binding.source.name,
        )


def check_claim_names(claims: Mapping[str, object]) -> None:
    """Claims name catalogue fields; the internal key names (``@...``) are never claims."""
    bad = [name for name in claims if name.startswith("@")]
    if bad:
        raise InvalidInput(
            "a claim names a catalogue field", [FieldProblem(f"claims.{n}", "unknown") for n in bad]
        )


def require_key(binding: DatasetBinding, held: Mapping[str, Any], keys: Sequence[str]) -> str:
    """The stable key read from the record (see :func:`adapters.records.record_key`)."""
    key = record_key(held, keys)
    if key is None:
        raise SourceBadData(
            "the record holds no stable key", dataset=binding.dataset, source=binding.source.name
        )
    return key


class BaseAdapter:
    """Shared behaviour; subclasses set ``kind`` and implement :meth:`read`."""

    kind = "base"

    def __init__(
        self, source: SourceConfig, *, clock: Clock = time.monotonic, seed: int | None = None
    ) -> None:
        self.source = source
        self.breaker = CircuitBreaker(source.name, source.breaker, clock)
        self._rng = random.Random(seed)  # noqa: S311 (retry jitter)

    async def read(
        self, binding: DatasetBinding, subject: SubjectId, fields: Sequence[str]
    ) -> dict[str, Any]:
        """Flat ``{catalogue field: value}`` for ``fields``, wrong-person guard applied."""
        raise NotImplementedError

    def _check(self, binding: DatasetBinding, subject: SubjectId, fields: Sequence[str]) -> None:
        if binding.source.name != self.source.name:
            raise BindingError(f"dataset {binding.dataset} is not served by {self.source.name}")
        if subject.type not in binding.identifiers:
            accepted = ", ".join(sorted(binding.identifiers))
            raise InvalidInput(
                "this dataset is not keyed by that identifier",
                [FieldProblem("subject.type", f"{binding.dataset} accepts {accepted}")],
            )
        for field in fields:
            binding.source_path(field)

    async def fetch(
        self, binding: DatasetBinding, subject: SubjectId, fields: Sequence[str]
    ) -> Record:
        wanted = list(dict.fromkeys(fields))
        self._check(binding, subject, wanted)

        async def attempt() -> dict[str, Any]:
            return await self.read(binding, subject, wanted)

        flat = await call_resiliently(
            attempt, retry=self.source.retries, breaker=self.breaker, rng=self._rng
        )
        try:
            return nest({field: flat.get(field) for field in wanted})
        except ValueError as e:
            raise BindingError(f"dataset {binding.dataset}: {e}") from e

    async def verify(
        self, binding: DatasetBinding, subject: SubjectId, claims: Mapping[str, object]
    ) -> Verification:
        check_claim_names(claims)
        keys = binding.key_fields()
        held = flatten(await self.fetch(binding, subject, [*claims, *keys]))
        return Verification(claims_hold(held, claims), require_key(binding, held, keys))

    async def exists(self, binding: DatasetBinding, subject: SubjectId) -> bool:
        """Whether the source holds ``subject`` in ``binding.dataset``: a read of the record's
        stable key only (wrong-person guard, breaker and retries as for any fetch)."""
        try:
            await self.fetch(binding, subject, binding.key_fields())
        except SubjectNotFound:
            return False
        return True

    def stream_document(
        self, binding: DatasetBinding, subject: SubjectId, sha256: str
    ) -> AsyncIterator[bytes]:
        raise BindingError(f"dataset {binding.dataset} holds no documents")

    async def aclose(self) -> None:
        return None


__all__ = ["BaseAdapter", "SourceError", "guard_identity", "guard_single"]
