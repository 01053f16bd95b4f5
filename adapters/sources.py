"""The one object the exchange service holds: datasets -> bound adapters.

Built at start-up from the administrator's bindings (never from a request). One adapter (one
connection pool, one circuit breaker) per source system, shared by the datasets it serves.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence

from adapters.bindings import BindingSet, DatasetBinding
from adapters.port import SourceAdapter
from adapters.records import Verification
from adapters.registry import AdapterRegistry, default_registry
from adapters.resilience import Clock
from broker.core.identifiers import SubjectId
from broker.core.projection import Record


class Sources:
    """Fetch, verify and stream documents by dataset id. Close with :meth:`aclose`."""

    def __init__(
        self,
        bindings: BindingSet,
        *,
        registry: AdapterRegistry | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.bindings = bindings
        chosen = registry or default_registry()
        # Build every adapter now so an unknown kind fails at start-up, not on a request.
        self._adapters: dict[str, SourceAdapter] = {
            name: chosen.create(config, clock=clock) for name, config in bindings.sources.items()
        }

    def binding(self, dataset: str) -> DatasetBinding:
        return self.bindings.get(dataset)

    def adapter(self, source: str) -> SourceAdapter:
        return self._adapters[source]

    def _for(self, dataset: str) -> tuple[SourceAdapter, DatasetBinding]:
        binding = self.bindings.get(dataset)
        return self._adapters[binding.source.name], binding

    async def fetch(self, dataset: str, subject: SubjectId, fields: Sequence[str]) -> Record:
        """See :meth:`adapters.port.SourceAdapter.fetch`."""
        adapter, binding = self._for(dataset)
        return await adapter.fetch(binding, subject, fields)

    async def verify(
        self, dataset: str, subject: SubjectId, claims: Mapping[str, object]
    ) -> Verification:
        """See :meth:`adapters.port.SourceAdapter.verify`."""
        adapter, binding = self._for(dataset)
        return await adapter.verify(binding, subject, claims)

    async def exists(self, dataset: str, subject: SubjectId) -> bool:
        """See :meth:`adapters.port.SourceAdapter.exists`."""
        adapter, binding = self._for(dataset)
        return await adapter.exists(binding, subject)

    def stream_document(
        self, dataset: str, subject: SubjectId, sha256: str
    ) -> AsyncIterator[bytes]:
        """See :meth:`adapters.port.SourceAdapter.stream_document`."""
        adapter, binding = self._for(dataset)
        return adapter.stream_document(binding, subject, sha256)

    def breaker_states(self) -> dict[str, str]:
        """Source name -> ``closed``/``open``/``half-open`` (for readiness and metrics)."""
        states: dict[str, str] = {}
        for name, adapter in self._adapters.items():
            breaker = getattr(adapter, "breaker", None)
            if breaker is not None:
                states[name] = breaker.state.value
        return states

    async def aclose(self) -> None:
        for adapter in self._adapters.values():
            await adapter.aclose()
