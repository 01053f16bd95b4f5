"""SQL storage of the audit log (SQLite or PostgreSQL, SQLAlchemy Core, parameterised only).

:func:`commit_batch` is the one write path. In one transaction it takes the append lock (an
``UPDATE`` of the single ``audit_head`` row: the SQLite write lock, or a PostgreSQL row lock held
until commit), reads the tree size and compact range, assigns the next indexes, inserts the
entries and the Merkle nodes they complete, maybe signs a checkpoint, and moves the head. So
several processes appending to one database make one sequence with no gaps or forks.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from broker.audit.checkpoint import Checkpoint
from broker.audit.entry import PERSONAL_FIELDS, SealedEntry, leaf_bytes
from broker.audit.errors import AuditNotFoundError, AuditUnavailableError, ProofError
from broker.audit.tables import audit_checkpoints, audit_entries, audit_head, audit_nodes
from broker.core import merkle

#: Signs a tree head: ``(tree_size, root, time_ms) -> Checkpoint``.
SignFn = Callable[[int, bytes, int], Checkpoint]

#: Writes a caller's own rows (an outbox row, say) in the transaction that commits an entry.
ExtraRows = Callable[[Connection], None]


class ExtraRowsError(Exception):
    """A caller's extra rows could not be written: the whole transaction was rolled back."""


@dataclass(frozen=True)
class CheckpointPolicy:
    """Make a checkpoint after ``every_entries`` new entries or ``every_seconds`` since the last."""

    every_entries: int = 1000
    every_seconds: float = 60.0

    def due(self, size: int, last_size: int, now_ms: int, last_ms: int) -> bool:
        if size <= last_size:
            return False
        return size - last_size >= self.every_entries or (
            now_ms - last_ms >= self.every_seconds * 1000
        )


@dataclass(frozen=True)
class Head:
    size: int
    compact: merkle.CompactRange
    checkpoint_size: int
    checkpoint_ms: int


@dataclass(frozen=True)
class BatchResult:
    first_index: int
    leaf_hashes: list[bytes]
    checkpoint: Checkpoint | None
    next_checkpoint_size: int
    """The entries are covered by a checkpoint no later than the one at this size."""


SEARCH_COLUMNS = (
    "exchange_id",
    "kind",
    "at_ms",
    "agreement_id",
    "party_id",
    "client_id",
    "dataset",
    "decision",
    "break_glass",
)
"""The search columns: copies of leaf values, re-derived from the leaf by the verifier."""

ENTRY_COLUMNS = (
    "idx",
    *SEARCH_COLUMNS,
    "record_salt",
    "leaf",
    *(f"{name}{suffix}" for name in PERSONAL_FIELDS for suffix in ("", "_salt")),
)
"""Every column of an audit entry row, in the order appends write and the verifier reads."""


def _insert_sql(conn: Connection, table: str, columns: Sequence[str]) -> str:
    """A parameterised INSERT in the driver's own placeholder style (names are constants)."""
    placeholders = ", ".join([_mark(conn)] * len(columns))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"  # noqa: S608


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection for reads; a database failure becomes :class:`AuditUnavailableError`."""
    try:
        with engine.connect() as conn:
            yield conn
    except SQLAlchemyError as e:
        raise AuditUnavailableError(f"the audit log cannot be read: {e}") from e


def _mark(conn: Connection) -> str:
    style = conn.dialect.paramstyle
    if style == "qmark":
        return "?"
    if style in ("format", "pyformat"):
        return "%s"
    raise RuntimeError(f"unsupported DB-API paramstyle {style}")  # pragma: no cover


@contextmanager
def _cursor(conn: Connection) -> Iterator[Any]:
    """A DB-API cursor on ``conn``'s own connection, so in its transaction. The append path's
    few fixed statements go straight to the driver: SQLAlchemy's per-statement work cost about
    as much as the statements themselves. A driver's integrity error is raised as SQLAlchemy's
    (the log isolates the entry a store refuses by that type)."""
    cursor = conn.connection.cursor()
    try:
        yield cursor
    except conn.dialect.loaded_dbapi.IntegrityError as e:
        raise IntegrityError("audit append", None, e) from e
    finally:
        cursor.close()


def _lock_head(conn: Connection) -> Head:
    """Take the append lock and read the head."""
    with _cursor(conn) as cursor:
        cursor.execute("UPDATE audit_head SET size = size WHERE id = 1")
        cursor.execute(
            "SELECT size, compact, checkpoint_size, checkpoint_ms FROM audit_head WHERE id = 1"
        )
        size, packed, checkpoint_size, checkpoint_ms = cursor.fetchone()
    return Head(
        size, merkle.CompactRange.from_bytes(size, bytes(packed)), checkpoint_size, checkpoint_ms
    )


def _move_head(conn: Connection, compact: merkle.CompactRange, cp_size: int, cp_ms: int) -> None:
    m = _mark(conn)
    with _cursor(conn) as cursor:
        cursor.execute(
            f"UPDATE audit_head SET size = {m}, compact = {m}, checkpoint_size = {m},"  # noqa: S608
            f" checkpoint_ms = {m} WHERE id = 1",
            (compact.size, compact.to_bytes(), cp_size, cp_ms),
        )


def read_head(conn: Connection) -> Head:
    row = conn.execute(select(audit_head).where(audit_head.c.id == 1)).one()
    return Head(
        row.size,
        merkle.CompactRange.from_bytes(row.size, row.compact),
        row.checkpoint_size,
        row.checkpoint_ms,
    )


def _durable(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL synchronous_commit = on")


def _insert_checkpoint(conn: Connection, checkpoint: Checkpoint) -> None:
    conn.execute(
        insert(audit_checkpoints).values(
            tree_size=checkpoint.tree_size,
            root=checkpoint.root,
            at_ms=checkpoint.time_ms,
            note=checkpoint.note,
        )
    )


def commit_batch(
    engine: Engine,
    batch: Sequence[SealedEntry],
    *,
    now_ms: int,
    sign: SignFn,
    policy: CheckpointPolicy,
    extras: Sequence[ExtraRows] = (),
) -> BatchResult:
    """Append ``batch`` in one transaction; returns once it is committed.

    ``extras`` run on the same connection after the entries are inserted: their rows commit
    with the entries or not at all. Raises :class:`ExtraRowsError` when one of them fails and
    SQLAlchemy errors unchanged otherwise (the log translates them).
    """
    with engine.begin() as conn:
        _durable(conn)
        head = _lock_head(conn)
        compact, hashes = _insert_entries(conn, head, batch)
        for write in extras:
            try:
                write(conn)
            except Exception as e:
                raise ExtraRowsError(f"{type(e).__name__}: {e}") from e
        checkpoint = None
        cp_size, cp_ms = head.checkpoint_size, head.checkpoint_ms
        if policy.due(compact.size, cp_size, now_ms, cp_ms):
            checkpoint = sign(compact.size, compact.root(), now_ms)
            _insert_checkpoint(conn, checkpoint)
            cp_size, cp_ms = compact.size, now_ms
        _move_head(conn, compact, cp_size, cp_ms)
    return BatchResult(head.size, hashes, checkpoint, cp_size + policy.every_entries)


def _insert_entries(
    conn: Connection, head: Head, batch: Sequence[SealedEntry]
) -> tuple[merkle.CompactRange, list[bytes]]:
    """Insert ``batch`` at the next indexes after ``head`` (whose lock ``conn`` holds) with the
    tree nodes they complete; returns the new compact range and the leaf hashes."""
    compact = head.compact
    rows: list[tuple[object, ...]] = []
    nodes: list[tuple[int, bytes]] = []
    hashes: list[bytes] = []
    for offset, sealed in enumerate(batch):
        index = head.size + offset
        leaf = leaf_bytes(sealed.body, index)
        h = merkle.leaf_hash(leaf)
        hashes.append(h)
        nodes.extend(compact.append(h))
        s = sealed.search
        personal = sealed.personal
        row: list[object] = [
            index,
            s.exchange_id,
            s.kind,
            s.at_ms,
            s.agreement_id,
            s.party_id,
            s.client_id,
            s.dataset,
            s.decision,
            s.break_glass,
            sealed.record_salt,
            leaf,
        ]
        for name in PERSONAL_FIELDS:
            row.extend(personal.get(name, (None, None)))
        rows.append(tuple(row))
    # Straight to the driver: SQLAlchemy's per-row bind processing costs more than the insert.
    with _cursor(conn) as cursor:
        cursor.executemany(_insert_sql(conn, "audit_entries", ENTRY_COLUMNS), rows)
        if nodes:
            cursor.executemany(_insert_sql(conn, "audit_nodes", ("pos", "hash")), nodes)
    return compact, hashes


def append_in(conn: Connection, sealed: SealedEntry) -> int:
    """Append one entry inside the caller's open transaction on ``conn`` (an administrative
    act's): the entry commits with the caller's own rows or not at all. Takes the append lock
    (held until the caller's transaction ends: keep it short), signs no checkpoint (the timer's
    or the next batch's covers it) and returns the entry's index. Raises SQLAlchemy errors."""
    _durable(conn)
    head = _lock_head(conn)
    compact, _ = _insert_entries(conn, head, [sealed])
    _move_head(conn, compact, head.checkpoint_size, head.checkpoint_ms)
    return head.size


def make_checkpoint(engine: Engine, *, now_ms: int, sign: SignFn) -> Checkpoint:
    """Sign the current tree head now (unless the newest checkpoint already covers it)."""
    with engine.begin() as conn:
        _durable(conn)
        head = _lock_head(conn)
        latest = latest_checkpoint(conn)
        if latest is not None and latest.tree_size == head.size:
            return latest
        checkpoint = sign(head.size, head.compact.root(), now_ms)
        _insert_checkpoint(conn, checkpoint)
        conn.execute(
            update(audit_head)
            .where(audit_head.c.id == 1)
            .values(checkpoint_size=head.size, checkpoint_ms=now_ms)
        )
    return checkpoint


def _checkpoint_from_row(row: Any) -> Checkpoint:
    size, root, at_ms, note = row
    return Checkpoint(note.split("\n", 1)[0], size, root, at_ms, note)


def latest_checkpoint(conn: Connection) -> Checkpoint | None:
    cols = audit_checkpoints.c
    row = conn.execute(
        select(cols.tree_size, cols.root, cols.at_ms, cols.note)
        .order_by(cols.tree_size.desc())
        .limit(1)
    ).first()
    return None if row is None else _checkpoint_from_row(row)


def covering_checkpoint(conn: Connection, index: int) -> Checkpoint | None:
    """The oldest checkpoint whose tree includes leaf ``index``."""
    cols = audit_checkpoints.c
    row = conn.execute(
        select(cols.tree_size, cols.root, cols.at_ms, cols.note)
        .where(cols.tree_size > index)
        .order_by(cols.tree_size)
        .limit(1)
    ).first()
    return None if row is None else _checkpoint_from_row(row)


def all_checkpoints(conn: Connection) -> list[Checkpoint]:
    cols = audit_checkpoints.c
    rows = conn.execute(
        select(cols.tree_size, cols.root, cols.at_ms, cols.note).order_by(cols.tree_size)
    ).all()
    return [_checkpoint_from_row(r) for r in rows]


def node_reader(conn: Connection) -> merkle.NodeReader:
    """Reads perfect nodes in one query; raises :class:`ProofError` when one is missing."""

    def read(wanted: Sequence[tuple[int, int]]) -> list[bytes]:
        positions = [merkle.node_position(level, index) for level, index in wanted]
        rows = conn.execute(
            select(audit_nodes.c.pos, audit_nodes.c.hash).where(audit_nodes.c.pos.in_(positions))
        ).all()
        found = {pos: h for pos, h in rows}
        try:
            return [found[p] for p in positions]
        except KeyError as e:
            raise ProofError(f"tree node {e.args[0]} is missing from the store") from e

    return read


def entry_row(conn: Connection, exchange_id: str) -> Any:
    """The stored row of one exchange. Raises :class:`AuditNotFoundError`."""
    row = conn.execute(
        select(audit_entries).where(audit_entries.c.exchange_id == exchange_id)
    ).first()
    if row is None:
        raise AuditNotFoundError(f"exchange {exchange_id} is not in the audit log")
    return row


def entry_row_at(conn: Connection, index: int) -> Any:
    row = conn.execute(select(audit_entries).where(audit_entries.c.idx == index)).first()
    if row is None:
        raise AuditNotFoundError(f"no audit entry at index {index}")
    return row


def b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()
