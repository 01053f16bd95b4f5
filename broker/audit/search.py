"""Search and read of audit entries for governance (filters, cursor pagination, one entry).

Results are plain JSON-able dicts built from the leaf (never a record: only its digest). Every
search column used here is one the verifier re-derives from the leaf, so an edit made to hide an
entry from a search is caught by ``broker audit verify``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, or_, select, union

from broker.audit import store
from broker.audit.entry import PERSONAL_FIELDS, AuditEntry, outcome_of, parse_leaf
from broker.audit.errors import AuditNotFoundError, AuditQueryError
from broker.audit.tables import audit_entries
from broker.core import merkle

MAX_PAGE = 500


@dataclass(frozen=True)
class AuditScope:
    """What one party's officers may see of individual entries: those its party made (it asked),
    and those about a dataset it provides. Being party to the agreement an exchange was made
    under is not enough (built by :func:`broker.agreements.visibility.party_scope`).
    ``oversight`` clients and auditors search without a scope."""

    party_id: str
    provided_datasets: tuple[str, ...] = ()

    def clause(self) -> Any:
        c = audit_entries.c
        if not self.provided_datasets:
            return c.party_id == self.party_id
        return or_(c.party_id == self.party_id, c.dataset.in_(self.provided_datasets))

    def covers(self, entry: dict[str, object]) -> bool:
        """Whether an entry (as :func:`entry_view` shows it) is within this scope."""
        return entry.get("party_id") == self.party_id or (
            entry.get("dataset") in self.provided_datasets
        )


@dataclass(frozen=True)
class SearchFilters:
    """All given filters must hold. Times are UTC ms, ``time_to_ms`` exclusive."""

    agreement_id: str | None = None
    party_id: str | None = None
    client_id: str | None = None
    dataset: str | None = None
    decision: str | None = None
    kind: str | None = None
    time_from_ms: int | None = None
    time_to_ms: int | None = None
    break_glass_only: bool = False
    subject_pseudonyms: tuple[str, ...] = ()
    """The subject's pseudonym under every key version (see ``PseudonymKeyring.all_pseudonyms``)."""


@dataclass(frozen=True)
class SearchPage:
    items: list[dict[str, object]]
    next_cursor: str | None

    def to_json(self) -> dict[str, object]:
        return {"items": self.items, "next_cursor": self.next_cursor}


def encode_cursor(index: int) -> str:
    return base64.urlsafe_b64encode(f"idx:{index}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """Raises :class:`AuditQueryError` for a cursor we did not make."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, number = text.partition(":")
        if prefix != "idx" or not number.isdigit():
            raise ValueError(text)
        return int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError) as e:
        raise AuditQueryError("the cursor is not valid") from e


def entry_view(row: Any) -> dict[str, object]:
    """One entry as governance sees it: the leaf's fields, its index and hash, the personal
    values still held (``None`` once redacted), and ``outcome`` (:func:`outcome_of`: what every
    reader shows; ``not_found`` for a subject not found at the source, whatever the leaf's
    ``decision`` says)."""
    leaf = bytes(row.leaf)
    _, body = parse_leaf(leaf)
    personal: dict[str, object] = {}
    for name in PERSONAL_FIELDS:
        personal[name] = getattr(row, name)
    body.pop("commitments", None)
    return {
        "leaf_index": int(row.idx),
        "leaf_hash": merkle.leaf_hash(leaf).hex(),
        **body,
        **personal,
        "outcome": outcome_of(body),
        "redacted": all(v is None for v in personal.values()) and row.record_salt is None,
    }


def _scoped_query(
    scope: AuditScope, conditions: Sequence[Any], limit: int, oldest_first: bool = False
) -> Any:
    """The first ``limit`` rows within ``scope``: one index walk per branch of the scope (its
    party, each dataset it provides), each stopping after ``limit`` rows, then merged. A plain
    ``OR`` would make the database collect and sort every row of the party's datasets."""
    c = audit_entries.c
    branches = [c.party_id == scope.party_id, *(c.dataset == d for d in scope.provided_datasets)]
    order = c.idx.asc() if oldest_first else c.idx.desc()
    parts = [
        select(c.idx).where(*conditions, branch).order_by(order).limit(limit).subquery()
        for branch in branches
    ]
    merged = union(*(select(p.c.idx) for p in parts)).subquery()
    merged_order = merged.c.idx.asc() if oldest_first else merged.c.idx.desc()
    wanted = select(merged.c.idx).order_by(merged_order).limit(limit)
    return select(audit_entries).where(c.idx.in_(wanted.scalar_subquery())).order_by(order)


def search(
    engine: Engine,
    filters: SearchFilters,
    *,
    cursor: str | None = None,
    limit: int = 50,
    scope: AuditScope | None = None,
    oldest_first: bool = False,
) -> SearchPage:
    """Newest first (or oldest first), within ``scope`` when given. Raises
    :class:`AuditQueryError` for a bad cursor or limit."""
    if not 1 <= limit <= MAX_PAGE:
        raise AuditQueryError(f"limit must be between 1 and {MAX_PAGE}")
    c = audit_entries.c
    conditions: list[Any] = []
    equal: Sequence[tuple[Any, object]] = [
        (c.agreement_id, filters.agreement_id),
        (c.party_id, filters.party_id),
        (c.client_id, filters.client_id),
        (c.dataset, filters.dataset),
        (c.decision, filters.decision),
        (c.kind, filters.kind),
    ]
    for column, value in equal:
        if value is not None:
            conditions.append(column == value)
    if filters.time_from_ms is not None:
        conditions.append(c.at_ms >= filters.time_from_ms)
    if filters.time_to_ms is not None:
        conditions.append(c.at_ms < filters.time_to_ms)
    if filters.break_glass_only:
        conditions.append(c.break_glass.is_(True))
    if filters.subject_pseudonyms:
        conditions.append(c.subject_pseudonym.in_(filters.subject_pseudonyms))
    if cursor is not None:
        after = decode_cursor(cursor)
        conditions.append(c.idx > after if oldest_first else c.idx < after)
    if scope is None:
        order = c.idx.asc() if oldest_first else c.idx.desc()
        query = select(audit_entries).where(*conditions).order_by(order).limit(limit + 1)
    else:
        query = _scoped_query(scope, conditions, limit + 1, oldest_first)
    with store.reading(engine) as conn:
        rows = conn.execute(query).all()
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(int(rows[-1].idx)) if more and rows else None
    return SearchPage([entry_view(r) for r in rows], next_cursor)


def get_exchange(
    engine: Engine, exchange_id: str, *, scope: AuditScope | None = None
) -> dict[str, object]:
    """One entry by exchange id. Raises :class:`AuditNotFoundError` (also when out of scope)."""
    with store.reading(engine) as conn:
        if scope is not None:
            c = audit_entries.c
            found = conn.execute(
                select(c.idx).where(c.exchange_id == exchange_id, scope.clause())
            ).first()
            if found is None:
                raise AuditNotFoundError(f"exchange {exchange_id} is not in the audit log")
        return entry_view(store.entry_row(conn, exchange_id))


def audit_read_entry(
    *, client_id: str, party_id: str, resource: str, query: dict[str, object]
) -> AuditEntry:
    """The entry that records a read of audit data (every read is itself logged).

    ``query`` must not hold a subject's identifier in clear: pass the pseudonym instead.
    """
    return AuditEntry(
        kind="audit-read",
        client_id=client_id,
        party_id=party_id,
        details={"resource": resource, "query": query},
    )
