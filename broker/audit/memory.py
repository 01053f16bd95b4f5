"""The audit port and an in-memory log for other areas' tests (the exchange pipeline's).

``AuditSink`` is all the exchange pipeline needs: ``append`` returns once the entry is durable or
raises. ``MemoryAuditLog`` keeps entries in a list, builds the same Merkle tree, and can be told to
fail so a test can check that no data is released without an entry.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from sqlalchemy import Engine

from broker.audit.entry import AuditEntry, SealedEntry, leaf_bytes, seal
from broker.audit.errors import AuditUnavailableError
from broker.audit.port import Appended
from broker.audit.port import AuditSink as AuditSink
from broker.audit.store import ExtraRows
from broker.core import merkle


class MemoryAuditLog:
    """An :class:`AuditSink` in memory. Set ``failing`` to make every append raise.

    Extras run in one transaction on ``engine`` when one is given (so outbox rows can be
    checked), else they are kept in ``extras`` unrun.
    """

    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = engine
        self.extras: list[ExtraRows] = []
        self.entries: list[AuditEntry] = []
        self.sealed: list[SealedEntry] = []
        self.failing = False
        self._tree = merkle.CompactRange.empty()
        self._lock = threading.Lock()

    def append(self, entry: AuditEntry, extras: Sequence[ExtraRows] = ()) -> Appended:
        sealed = seal(entry)
        with self._lock:
            if self.failing:
                raise AuditUnavailableError("audit log write failed (in-memory log set to fail)")
            if extras and self.engine is not None:
                try:
                    with self.engine.begin() as conn:
                        for write in extras:
                            write(conn)
                except Exception as e:
                    raise AuditUnavailableError(f"the entry's extra rows failed: {e}") from e
            elif extras:
                self.extras.extend(extras)
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
