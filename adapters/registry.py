"""Adapter kinds -> adapter classes. Adding a kind: write its module in ``adapters/`` and add one
line to :func:`default_registry`."""

from __future__ import annotations

import time
from collections.abc import Callable

from adapters.bindings import SourceConfig
from adapters.errors import BindingError
from adapters.port import SourceAdapter
from adapters.resilience import Clock

AdapterFactory = Callable[..., SourceAdapter]
"""Called as ``factory(source_config, clock=clock)``."""


class AdapterRegistry:
    def __init__(self) -> None:
        self._factories: dict[str, AdapterFactory] = {}

    def register(self, kind: str, factory: AdapterFactory) -> None:
        if kind in self._factories:
            raise BindingError(f"adapter kind {kind!r} is registered twice")
        self._factories[kind] = factory

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(sorted(self._factories))

    def create(self, source: SourceConfig, *, clock: Clock = time.monotonic) -> SourceAdapter:
        """A new adapter for ``source``; :class:`BindingError` for an unknown kind."""
        try:
            factory = self._factories[source.kind]
        except KeyError:
            raise BindingError(
                f"source {source.name}: unknown adapter kind {source.kind!r}"
                f" (known: {', '.join(self.kinds)})"
            ) from None
        return factory(source, clock=clock)


def default_registry() -> AdapterRegistry:
    """Every adapter kind the broker ships."""
    from adapters.documents import DocumentsAdapter
    from adapters.fhir import FhirAdapter
    from adapters.memory import MemoryAdapter
    from adapters.rest import RestAdapter
    from adapters.sql import SqlAdapter

    registry = AdapterRegistry()
    registry.register("fhir", FhirAdapter)
    registry.register("sql", SqlAdapter)
    registry.register("rest", RestAdapter)
    registry.register("documents", DocumentsAdapter)
    registry.register("memory", MemoryAdapter)
    return registry
