"""Full verification of a stored log, trusting nothing it stores.

For every row, in index order: the leaf bytes are hashed afresh (never a stored hash trusted), the
leaf's own index must be the row's, every search column must equal its value re-derived from the
leaf, and every personal value must open the leaf's salted commitment (or be redacted, with both
value and salt gone, by a logged redaction that covers the entry's time). The Merkle tree is
rebuilt from the recomputed leaf hashes and compared with every stored node, with the head row,
and with the root of every checkpoint (each one's Ed25519 signature checked, each consistent with
the next by an RFC 9162 consistency proof) and of checkpoints kept by other parties. Every
``admin_events`` row is compared with the log entry of its act (:mod:`broker.audit.admin`).

The scan stops at the first bad entry and names it; checkpoint problems are all listed.
"""

from __future__ import annotations

import bisect
import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, Engine

from broker.audit import store
from broker.audit.admin import check_admin_events
from broker.audit.checkpoint import Checkpoint, open_checkpoint
from broker.audit.entry import PERSONAL_FIELDS, commitment, parse_leaf, search_values
from broker.audit.errors import CheckpointError
from broker.core import merkle

Progress = Callable[[int, int], None]

_SCAN_COLUMNS = ", ".join(store.ENTRY_COLUMNS)
_SEARCH_NAMES = store.SEARCH_COLUMNS


@dataclass(frozen=True)
class Problem:
    """One finding. ``index`` names the first bad entry when the finding is about an entry."""

    message: str
    index: int | None = None
    exchange_id: str | None = None

    def to_json(self) -> dict[str, object]:
        return {"index": self.index, "exchange_id": self.exchange_id, "message": self.message}


@dataclass(frozen=True)
class VerifyReport:
    entries_checked: int
    checkpoints_checked: int
    external_checkpoints_checked: int
    problems: tuple[Problem, ...] = field(default=())
    lost_entries: int = 0
    """Entries a checkpoint (stored, or kept by a party) covers that the log no longer has: a
    lost tail (the log truncated, or restored from a backup older than that checkpoint)."""

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_bad_entry(self) -> int | None:
        indexes = [p.index for p in self.problems if p.index is not None]
        return min(indexes) if indexes else None

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "entries_checked": self.entries_checked,
            "checkpoints_checked": self.checkpoints_checked,
            "external_checkpoints_checked": self.external_checkpoints_checked,
            "first_bad_entry": self.first_bad_entry,
            "lost_entries": self.lost_entries,
            "problems": [p.to_json() for p in self.problems],
        }


class _ScanStoppedError(Exception):
    """The scan found a bad entry; the problem is already recorded."""


@dataclass
class _Redactions:
    """Logged redactions, by index, with the suffix maximum of their cut-off times."""

    indexes: list[int]
    suffix_max_before: list[int]

    @classmethod
    def load(cls, conn: Connection) -> _Redactions:
        rows = conn.exec_driver_sql(
            "SELECT idx, leaf FROM audit_entries WHERE kind = 'redaction' ORDER BY idx"
        ).all()
        found: list[tuple[int, int]] = []
        for idx, leaf in rows:
            try:
                _, body = parse_leaf(bytes(leaf))
                # A redaction cannot reach past its own time: no redacting the future.
                before = min(int(body["details"]["before_ms"]), search_values(body)[2])
            except (ValueError, KeyError, TypeError):
                continue  # the scan reports the row itself
            found.append((idx, before))
        suffix: list[int] = []
        best = -1
        for _, before in reversed(found):
            best = max(best, before)
            suffix.append(best)
        suffix.reverse()
        return cls([i for i, _ in found], suffix)

    def covers(self, index: int, at_ms: int) -> bool:
        """True when a redaction logged after ``index`` cut off entries older than ``at_ms``."""
        k = bisect.bisect_right(self.indexes, index)
        return k < len(self.indexes) and at_ms < self.suffix_max_before[k]


class _Scan:
    def __init__(
        self,
        conn: Connection,
        targets: dict[int, list[tuple[str, bytes]]],
        redactions: _Redactions,
    ) -> None:
        self.conn = conn
        self.targets = targets
        self.redactions = redactions
        self.compact = merkle.CompactRange.empty()
        self.problems: list[Problem] = []
        self.matched = 0
        """The largest tree size whose root a checkpoint confirmed."""
        self.lost = 0
        """Entries a checkpoint covers beyond the end of the log (set once the scan is done)."""

    def fail(self, message: str, index: int | None, exchange_id: object = None) -> NoReturn:
        ex = None if exchange_id is None else str(exchange_id)
        self.problems.append(Problem(message, index, ex))
        raise _ScanStoppedError

    def run(self, total: int, chunk: int, progress: Progress | None) -> None:
        m = "?" if self.conn.dialect.paramstyle == "qmark" else "%s"
        rows_sql = (
            f"SELECT {_SCAN_COLUMNS} FROM audit_entries WHERE idx >= {m} ORDER BY idx LIMIT {m}"  # noqa: S608
        )
        nodes_sql = f"SELECT pos, hash FROM audit_nodes WHERE pos >= {m} AND pos < {m} ORDER BY pos"  # noqa: S608
        # The plain DB-API cursor: SQLAlchemy's result wrapping would cost more than the checks.
        cursor = self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        while True:
            start = self.compact.size
            cursor.execute(rows_sql, (start, chunk))
            rows = cursor.fetchall()
            if not rows:
                cursor.close()
                return
            last = rows[-1][0]
            end = start + len(rows) if last == start + len(rows) - 1 else last + 1
            p0, p1 = merkle.nodes_for_leaf_count(start), merkle.nodes_for_leaf_count(end)
            cursor.execute(nodes_sql, (p0, p1))
            nodes = cursor.fetchall()
            self._chunk(rows, nodes)
            if progress is not None:
                progress(self.compact.size, total)

    def _chunk(self, rows: Sequence[Any], nodes: Sequence[Any]) -> None:
        k = 0
        n_nodes = len(nodes)
        targets = self.targets
        for row in rows:
            index = self.compact.size
            idx = row[0]
            if idx != index:
                self.fail(f"entry {index} is missing (deleted row, next stored is {idx})", index)
            leaf = bytes(row[11])
            h = merkle.leaf_hash(leaf)
            self._row(index, row, leaf)
            for pos, expected in self.compact.append(h):
                stored = nodes[k] if k < n_nodes else None
                k += 1
                if stored is None or stored[0] != pos:
                    self.fail(f"entry {index}: Merkle tree node {pos} is missing", index, row[1])
                if bytes(stored[1]) != expected:
                    what = (
                        "its leaf hash differs from the stored tree (entry edited or rows swapped)"
                        if pos == merkle.nodes_for_leaf_count(index)
                        else f"stored tree node {pos} differs from the recomputed one"
                    )
                    self.fail(f"entry {index}: {what}", index, row[1])
            size = self.compact.size
            if size in targets:
                root = self.compact.root()
                for label, want in targets[size]:
                    if want != root:
                        first = self.matched
                        self.fail(
                            f"{label} (tree size {size}) does not match the log: one of entries"
                            f" {first}..{size - 1} was changed and the stored tree rewritten"
                            " to hide it",
                            first,
                        )
                self.matched = size
        if k != n_nodes:
            self.fail("the tree holds nodes for entries that are not in the log", self.compact.size)

    def _row(self, index: int, row: Sequence[Any], leaf: bytes) -> None:
        exchange_id = row[1]
        try:
            leaf_index, body = parse_leaf(leaf)
            derived = search_values(body)
        except (ValueError, KeyError, TypeError) as e:
            self.fail(f"entry {index}: the leaf is not a valid entry ({e})", index, exchange_id)
        if leaf_index != index:
            self.fail(
                f"entry {index}: the leaf says it is entry {leaf_index} (rows inserted, deleted"
                " or reordered)",
                index,
                exchange_id,
            )
        # Fast path: one tuple comparison; name the column only when something differs.
        # break_glass must be exactly 0/1 (or False/True): SQLite would keep a 2.
        if row[1:10] != derived or row[9] not in (0, 1):
            for offset, name in enumerate(_SEARCH_NAMES, start=1):
                if row[offset] != derived[offset - 1] or (
                    name == "break_glass" and row[9] not in (0, 1)
                ):
                    self.fail(
                        f"entry {index}: column {name} differs from the leaf", index, exchange_id
                    )
        commitments = body.get("commitments")
        if not isinstance(commitments, dict):
            self.fail(f"entry {index}: the leaf has no commitments", index, exchange_id)
        redacted = False
        for i, name in enumerate(PERSONAL_FIELDS):
            value, salt = row[12 + 2 * i], row[13 + 2 * i]
            committed = commitments.get(name)
            if committed is None:
                if value is not None or salt is not None:
                    self.fail(
                        f"entry {index}: {name} is stored but the leaf commits to none",
                        index,
                        exchange_id,
                    )
            elif value is None and salt is None:
                redacted = True
            elif value is None or salt is None or commitment(value, bytes(salt)) != committed:
                self.fail(
                    f"entry {index}: {name} does not open the leaf's commitment",
                    index,
                    exchange_id,
                )
        record_salt = row[10]
        if body.get("released_digest") is None:
            if record_salt is not None:
                self.fail(f"entry {index}: a record salt without a digest", index, exchange_id)
        elif record_salt is None:
            redacted = True
        if redacted and not self.redactions.covers(index, derived[2]):
            self.fail(
                f"entry {index}: personal fields were removed but no logged redaction covers it",
                index,
                exchange_id,
            )


def _check_checkpoints(
    stored: Sequence[Checkpoint], public: Ed25519PublicKey, origin: str | None
) -> tuple[list[Checkpoint], list[Problem]]:
    good: list[Checkpoint] = []
    problems: list[Problem] = []
    for cp in stored:
        try:
            opened = open_checkpoint(cp.note, public, origin)
        except CheckpointError as e:
            problems.append(Problem(f"stored checkpoint at size {cp.tree_size}: {e.detail}"))
            continue
        if (opened.tree_size, opened.root, opened.time_ms) != (cp.tree_size, cp.root, cp.time_ms):
            problems.append(
                Problem(f"stored checkpoint at size {cp.tree_size}: columns differ from its note")
            )
            continue
        good.append(opened)
    return good, problems


def _snapshot(conn: Connection) -> None:
    """Read one consistent state of the log while appends go on (a false alarm otherwise)."""
    if conn.dialect.name == "sqlite":
        # pysqlite runs plain SELECTs outside any transaction; a read transaction pins the WAL
        # snapshot at its first read. The connection's close rolls it back.
        conn.connection.dbapi_connection.execute("BEGIN")  # type: ignore[union-attr]
    elif conn.dialect.name == "postgresql":
        conn.execution_options(isolation_level="REPEATABLE READ")


def stored_origin(engine: Engine) -> str | None:
    """The origin the log names itself by: that of its oldest stored checkpoint (None before the
    first). ``verify_log`` then checks every checkpoint's signature and origin against it."""
    with engine.connect() as conn:
        stored = store.all_checkpoints(conn)
    return stored[0].origin if stored else None


def verify_log(
    engine: Engine,
    public: Ed25519PublicKey,
    *,
    origin: str | None = None,
    against: Sequence[tuple[str, str]] = (),
    progress: Progress | None = None,
    chunk: int = 10_000,
) -> VerifyReport:
    """Verify the whole log. ``against`` holds ``(label, note text)`` of checkpoints other parties
    kept. Never raises for tampering: everything found is in the report."""
    with engine.connect() as conn:
        _snapshot(conn)
        try:
            head = store.read_head(conn)
        except Exception as e:  # a missing or mangled head row is itself tampering
            return VerifyReport(0, 0, 0, (Problem(f"the log head is unreadable: {e}", 0),))
        stored = store.all_checkpoints(conn)
        checkpoints, problems = _check_checkpoints(stored, public, origin)
        targets: dict[int, list[tuple[str, bytes]]] = {}
        for cp in checkpoints:
            targets.setdefault(cp.tree_size, []).append((f"checkpoint {cp.tree_size}", cp.root))
        external: list[tuple[str, Checkpoint]] = []
        for label, note in against:
            try:
                cp = open_checkpoint(note, public, origin)
            except CheckpointError as e:
                problems.append(Problem(f"{label}: {e.detail}"))
                continue
            external.append((label, cp))
            targets.setdefault(cp.tree_size, []).append((label, cp.root))
        scan = _Scan(conn, targets, _Redactions.load(conn))
        try:
            scan.run(head.size, chunk, progress)
            _check_tail(scan, head, stored, external)
            _check_consistency(conn, scan, checkpoints)
        except _ScanStoppedError:
            pass
        except Exception as e:  # a value of the wrong type in a column, say
            at = scan.compact.size
            scan.problems.append(Problem(f"entry {at}: a stored row is unreadable ({e})", at))
        problems.extend(scan.problems)
        try:
            problems.extend(Problem(m, i, x) for m, i, x in check_admin_events(conn))
        except Exception as e:  # a mangled admin_events row, say
            problems.append(Problem(f"the admin_events table is unreadable ({e})"))
        if 0 in targets and scan.compact.size == 0:
            for label, root in targets[0]:
                if root != merkle.EMPTY_ROOT:
                    problems.append(Problem(f"{label}: an empty log has another root"))
    return VerifyReport(scan.compact.size, len(stored), len(external), tuple(problems), scan.lost)


def _check_tail(
    scan: _Scan,
    head: store.Head,
    stored: Sequence[Checkpoint],
    external: Sequence[tuple[str, Checkpoint]],
) -> None:
    n = scan.compact.size
    labelled = [(f"a stored checkpoint of size {cp.tree_size} exists", cp) for cp in stored] + [
        (f"{label}: a checkpoint kept by a party covers {cp.tree_size} entries", cp)
        for label, cp in external
    ]
    scan.lost = max([cp.tree_size - n for _, cp in labelled if cp.tree_size > n], default=0)
    for what, cp in labelled:
        if cp.tree_size > n:
            scan.fail(
                f"{what} but the log ends at {n}: the last {cp.tree_size - n} entries"
                f" ({n}..{cp.tree_size - 1}) are lost (tail truncated, or the log restored from"
                " a backup older than that checkpoint)",
                n,
            )
    if head.size != n:
        where = "missing (tail truncated)" if head.size > n else "not in the tree head"
        scan.fail(f"the head says {head.size} entries, the log has {n}: entry {n} {where}", n)
    if head.compact.to_bytes() != scan.compact.to_bytes():
        scan.fail("the head's compact range differs from the recomputed tree", None)
    latest = stored[-1] if stored else None
    if latest is not None and (head.checkpoint_size, head.checkpoint_ms) != (
        latest.tree_size,
        latest.time_ms,
    ):
        scan.fail("the head does not point at the newest checkpoint (checkpoint removed?)", None)
    m = "?" if scan.conn.dialect.paramstyle == "qmark" else "%s"
    extra = scan.conn.exec_driver_sql(
        f"SELECT count(*) FROM audit_nodes WHERE pos >= {m}",  # noqa: S608
        (merkle.nodes_for_leaf_count(n),),
    ).scalar_one()
    if extra:
        scan.fail(f"the tree holds nodes beyond entry {n}: entries were removed", n)


def _check_consistency(conn: Connection, scan: _Scan, checkpoints: Sequence[Checkpoint]) -> None:
    read = store.node_reader(conn)
    for older, newer in itertools.pairwise(checkpoints):
        proof = merkle.consistency_proof(older.tree_size, newer.tree_size, read)
        if not merkle.verify_consistency(
            older.tree_size, newer.tree_size, older.root, newer.root, proof
        ):
            scan.fail(
                f"checkpoint {older.tree_size} is not consistent with checkpoint {newer.tree_size}",
                older.tree_size,
            )


def read_checkpoint_files(paths: Sequence[str]) -> list[tuple[str, str]]:
    """``(label, note)`` for each file; a file may hold one note or a JSON object with ``note``."""
    out: list[tuple[str, str]] = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if text.lstrip().startswith("{"):
            text = str(json.loads(text)["note"])
        out.append((path, text))
    return out
