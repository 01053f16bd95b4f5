"""What the log's users hold: the append port and what an append promises.

No database library here: the exchange pipeline's ports (:mod:`broker.exchange.ports`) use these
types, and the concrete log (:class:`broker.audit.log.AuditLog`) implements the port.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from broker.audit.checkpoint import Checkpoint
from broker.audit.entry import AuditEntry

ExtraRowsWriter = Callable[[Any], None]
"""Writes rows of its own on the open connection of the commit that makes an entry durable."""


@dataclass(frozen=True)
class Appended:
    """What an append promises: the entry is durably at ``leaf_index`` with ``leaf_hash``."""

    exchange_id: str
    leaf_index: int
    leaf_hash: bytes
    record_salt: bytes | None
    checkpoint: Checkpoint | None
    """A checkpoint made in the same commit (it covers the entry), else None."""
    next_checkpoint_size: int
    """Otherwise a checkpoint of at most this size will cover it (or the next timed one)."""
    inclusion_proof: tuple[bytes, ...] | None = None
    """With ``checkpoint``: the RFC 9162 inclusion proof of the entry into it."""


class AuditSink(Protocol):
    def append(self, entry: AuditEntry, extras: Sequence[ExtraRowsWriter] = ()) -> Appended:
        """Durably log ``entry`` (and ``extras``' rows in the same transaction) or raise
        (``AuditUnavailableError``, ``AuditEntryError``)."""
        ...
