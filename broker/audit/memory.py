"""The audit port and an in-memory log for other areas' tests (the exchange pipeline's).

``AuditSink`` is all the exchange pipeline needs: ``append`` returns once the entry is durable or
raises. ``MemoryAuditLog`` keeps entries in a list, builds the same Merkle tree, and can be told to
fail so a test can check that no data is released without an entry.
"""

from __future__ import annotations

import threading
from typing import Protocol

from broker.audit.entry import AuditEntry, SealedEntry, leaf_bytes, seal
from broker.audit.errors import AuditUnavailableError
from broker.audit.log import Appended
from broker.core import merkle


class AuditSink(Protocol):
    def append(self, entry: AuditEntry) -> Appended:
        """Durably log ``entry`` or raise (``AuditUnavailableError``, ``AuditEntryError``)."""
        ...


class MemoryAuditLog:
    """An :class:`AuditSink` in memory. Set ``failing`` to make every append raise."""

    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []
        self.sealed: list[SealedEntry] = []
        self.failing = False
        self._tree = merkle.CompactRange.empty()
        self._lock = threading.Lock()

    def append(self, entry: AuditEntry) -> Appended:
        sealed = seal(entry)
        with self._lock:
            if self.failing:
                raise AuditUnavailableError("audit log write failed (in-memory log set to fail)")
            index = self._tree.size
            h = merkle.leaf_hash(leaf_bytes(sealed.body, index))
            self._tree.append(h)
            self.entries.append(entry)
            self.sealed.append(sealed)
        return Appended(
            exchange_id=entry.exchange_id,
            leaf_index=index,
            leaf_hash=h,
            record_salt=sealed.record_salt,
            checkpoint=None,
            next_checkpoint_size=index + 1,
        )

    def root(self) -> bytes:
        with self._lock:
            return self._tree.root()
