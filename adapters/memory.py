"""An in-memory adapter for tests of the exchange service: records held as flat dicts.

Binding options: none. ``endpoint`` is ignored. Records are added with :meth:`MemoryAdapter.put`
keyed by dataset and subject; the wrong-person guard applies to them like to any source.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from adapters.base import BaseAdapter, guard_identity, guard_single
from adapters.bindings import DatasetBinding, SourceConfig
from adapters.errors import SubjectNotFound
from adapters.resilience import Clock
from broker.core.identifiers import SubjectId


class MemoryAdapter(BaseAdapter):
    kind = "memory"

    def __init__(self, source: SourceConfig, *, clock: Clock = time.monotonic) -> None:
        super().__init__(source, clock=clock)
        self._rows: dict[str, list[dict[str, Any]]] = {}

    def put(self, dataset: str, row: dict[str, Any]) -> None:
        """Add a row of source values, keyed by the binding's source paths."""
        self._rows.setdefault(dataset, []).append(dict(row))

    async def read(
        self, binding: DatasetBinding, subject: SubjectId, fields: Sequence[str]
    ) -> dict[str, Any]:
        key = binding.identifiers[subject.type]
        rows = [r for r in self._rows.get(binding.dataset, []) if r.get(key) == subject.value]
        if not rows:
            raise SubjectNotFound("no record", dataset=binding.dataset, source=self.source.name)
        guard_single(binding, len(rows))
        guard_identity(binding, subject, rows[0].get(key))
        return {field: rows[0].get(binding.source_path(field)) for field in fields}
