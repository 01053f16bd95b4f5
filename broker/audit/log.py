"""The audit log service: durable appends with group commit, checkpoints, proofs, receipts.

``AuditLog.append`` returns only once the entry is committed (SQLite WAL with synchronous=FULL,
PostgreSQL with synchronous_commit on). Concurrent callers (the gateway calls from a threadpool)
share commits: the first caller to find no commit in progress becomes the leader, takes every
queued entry (up to ``max_batch``) and commits them in one transaction while the others wait
(each on its own lock, so a commit wakes only its own callers); then the oldest waiter leads
the next batch with whatever queued meanwhile. Any failure raises
:class:`AuditUnavailableError` to every caller in the failed batch: no entry, no data released.

A caller can pass ``extras`` (callables given the open connection) to write rows of its own in
the transaction that commits its entry (the exchange pipeline's outbox row): both commit or
neither does. A failing extra fails only its own caller's entry (the batch is retried without it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from broker.audit import store
from broker.audit.checkpoint import Checkpoint, sign_checkpoint, verifier_key
from broker.audit.entry import AuditEntry, SealedEntry, seal
from broker.audit.errors import AuditError, AuditUnavailableError, ProofError
from broker.audit.port import Appended
from broker.audit.receipts import build_receipt
from broker.core import merkle
from broker.db.gate import write_gate


@dataclass(frozen=True)
class LogSigner:
    """The log's identity: its origin (note key name) and Ed25519 key."""

    origin: str
    key: Ed25519PrivateKey = field(repr=False)

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.key.public_key()

    def sign(self, tree_size: int, root: bytes, time_ms: int) -> Checkpoint:
        return sign_checkpoint(self.key, self.origin, tree_size, root, time_ms)

    def verifier_key(self) -> str:
        return verifier_key(self.origin, self.public_key)


@dataclass
class _Pending:
    sealed: SealedEntry
    extras: Sequence[store.ExtraRows] = ()
    result: Appended | None = None
    error: BaseException | None = None
    done: bool = False
    wake: threading.Lock = field(default_factory=threading.Lock)
    """Held from creation; released to wake the waiting caller (cheaper than an Event)."""

    def __post_init__(self) -> None:
        self.wake.acquire()


class AuditLog:
    """The append side of the log, plus the reads a gateway needs (checkpoint, proofs)."""

    def __init__(
        self,
        engine: Engine,
        signer: LogSigner,
        *,
        policy: store.CheckpointPolicy | None = None,
        max_batch: int = 512,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        self._engine = engine
        self._signer = signer
        self._policy = policy or store.CheckpointPolicy()
        self._max_batch = max_batch
        self._clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        self._gate = write_gate(engine)
        self._lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._leader = False

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def signer(self) -> LogSigner:
        return self._signer

    def append(self, entry: AuditEntry, extras: Sequence[store.ExtraRows] = ()) -> Appended:
        """Log ``entry`` durably; returns once committed.

        ``extras`` are called with the open connection inside the commit's transaction, so the
        rows they write are durable exactly when the entry is (and never without it).
        Raises :class:`AuditEntryError` for an entry that cannot be logged and
        :class:`AuditUnavailableError` when the commit failed (nothing was logged, no extra
        row written).
        """
        item = _Pending(seal(entry), tuple(extras))
        with self._lock:
            self._queue.append(item)
            follower = self._leader
            self._leader = True
        if follower:
            # Woken when our entry is done, or when the last leader hands us the lead.
            item.wake.acquire()
            if item.done:
                return self._outcome(item)
        try:
            while not item.done:
                with self._lock:
                    batch = self._queue[: self._max_batch]
                    del self._queue[: self._max_batch]
                try:
                    self._commit(batch)
                finally:
                    for it in batch:
                        it.done = True
                        if it is not item:
                            it.wake.release()
        finally:
            with self._lock:
                if self._queue:
                    self._queue[0].wake.release()  # the oldest waiter leads next
                else:
                    self._leader = False
        return self._outcome(item)

    @staticmethod
    def _outcome(item: _Pending) -> Appended:
        if item.result is None:
            if isinstance(item.error, AuditError):
                raise item.error
            raise AuditUnavailableError("the audit entry was not logged") from item.error
        return item.result

    def _commit(self, batch: list[_Pending]) -> None:
        try:
            self._commit_once(batch)
        except store.ExtraRowsError as e:
            if len(batch) == 1:
                batch[0].error = AuditUnavailableError(f"the entry's extra rows failed: {e}")
                batch[0].error.__cause__ = e
                return
            for item in batch:  # isolate the caller whose extra rows failed
                self._commit([item])
        except IntegrityError as e:
            if len(batch) == 1:
                batch[0].error = AuditUnavailableError(
                    f"audit entry refused by the store (duplicate exchange id?): {e.orig}"
                )
                return
            for item in batch:  # isolate the entry the store refused
                self._commit([item])
        except Exception as e:
            for item in batch:
                item.error = AuditUnavailableError(f"audit log write failed: {e}")
                item.error.__cause__ = e

    def _commit_once(self, batch: list[_Pending]) -> None:
        with self._gate.held():
            result = store.commit_batch(
                self._engine,
                [it.sealed for it in batch],
                now_ms=self._clock_ms(),
                sign=self._signer.sign,
                policy=self._policy,
                extras=[write for it in batch for write in it.extras],
            )
        proofs = self._proofs(result.first_index, len(batch), result.checkpoint)
        for offset, item in enumerate(batch):
            item.result = Appended(
                exchange_id=item.sealed.search.exchange_id,
                leaf_index=result.first_index + offset,
                leaf_hash=result.leaf_hashes[offset],
                record_salt=item.sealed.record_salt,
                checkpoint=result.checkpoint,
                next_checkpoint_size=result.next_checkpoint_size,
                inclusion_proof=None if proofs is None else proofs[offset],
            )

    def _proofs(
        self, first: int, count: int, checkpoint: Checkpoint | None
    ) -> list[tuple[bytes, ...]] | None:
        """With a checkpoint made in the commit (every N entries), each entry's inclusion proof
        into it, so its receipt checks offline at once; None without one (or if unreadable)."""
        if checkpoint is None:
            return None
        try:
            with store.reading(self._engine) as conn:
                read = store.node_reader(conn)
                return [
                    tuple(merkle.inclusion_proof(first + i, checkpoint.tree_size, read))
                    for i in range(count)
                ]
        except Exception:  # the entries are durable: their receipts stay pending instead
            return None

    # --- checkpoints and proofs -----------------------------------------------------------------

    def checkpoint_now(self) -> Checkpoint:
        """Sign the current tree head (on demand, or from a timer). Raises AuditUnavailableError."""
        try:
            return store.make_checkpoint(
                self._engine, now_ms=self._clock_ms(), sign=self._signer.sign
            )
        except AuditError:
            raise
        except Exception as e:
            raise AuditUnavailableError(f"could not make a checkpoint: {e}") from e

    def checkpoint_if_due(self) -> Checkpoint | None:
        """For a periodic timer: sign a checkpoint when entries arrived and ``every_seconds``
        passed since the last one (appends also check this). Raises AuditUnavailableError."""
        try:
            with store.reading(self._engine) as conn:
                head = store.read_head(conn)
        except Exception as e:
            raise AuditUnavailableError(f"could not read the log head: {e}") from e
        if not self._policy.due(
            head.size, head.checkpoint_size, self._clock_ms(), head.checkpoint_ms
        ):
            return None
        return self.checkpoint_now()

    def latest_checkpoint(self) -> Checkpoint:
        """The newest signed tree head, made now when the log has none yet."""
        with store.reading(self._engine) as conn:
            latest = store.latest_checkpoint(conn)
        return latest if latest is not None else self.checkpoint_now()

    def size(self) -> int:
        with store.reading(self._engine) as conn:
            return store.read_head(conn).size

    def inclusion_proof(
        self,
        *,
        exchange_id: str | None = None,
        index: int | None = None,
        tree_size: int | None = None,
    ) -> dict[str, object]:
        """RFC 9162 inclusion proof of one entry in the tree of ``tree_size`` (default: the newest
        checkpoint's). Raises :class:`AuditNotFoundError`, :class:`ProofError`."""
        with store.reading(self._engine) as conn:
            if exchange_id is not None:
                row = store.entry_row(conn, exchange_id)
            elif index is not None:
                row = store.entry_row_at(conn, index)
            else:
                raise ProofError("name an exchange id or a leaf index")
            leaf_index = int(row.idx)
            if tree_size is None:
                latest = store.latest_checkpoint(conn)
                tree_size = 0 if latest is None else latest.tree_size
            size = store.read_head(conn).size
            if not leaf_index < tree_size <= size:
                raise ProofError(
                    f"leaf {leaf_index} is not in a tree of size {tree_size} (log size {size});"
                    " fetch a newer checkpoint"
                )
            proof = merkle.inclusion_proof(leaf_index, tree_size, store.node_reader(conn))
        return {
            "exchange_id": str(row.exchange_id),
            "leaf_index": leaf_index,
            "tree_size": tree_size,
            "leaf_hash": merkle.leaf_hash(bytes(row.leaf)).hex(),
            "proof": [h.hex() for h in proof],
        }

    def consistency_proof(self, first: int, second: int) -> dict[str, object]:
        """RFC 9162 consistency proof between two tree sizes. Raises :class:`ProofError`."""
        with store.reading(self._engine) as conn:
            size = store.read_head(conn).size
            if not 0 <= first <= second <= size:
                raise ProofError(f"no consistency proof from {first} to {second} (log size {size})")
            proof = merkle.consistency_proof(first, second, store.node_reader(conn))
        return {"first": first, "second": second, "proof": [h.hex() for h in proof]}

    def receipt(self, exchange_id: str) -> dict[str, object]:
        """The receipt of one exchange (see :mod:`broker.audit.receipts`)."""
        return build_receipt(self._engine, exchange_id)
