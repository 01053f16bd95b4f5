"""Every exchange one verified user of a party made, for that party's governance officers.

A user is the identity provider's issuer and their subject there: entries are found by the
party and the logged ``user_id`` (the ``ix_audit_entries_user`` index), then kept only where the
leaf says the user was verified by that issuer (``details.user_verified``, ``details.user_issuer``),
so an asserted user of the same name, or a user of another provider, is never listed. Only the
party's own systems' exchanges are listed: an officer's party is fixed by the caller. Newest
first, with the cursor of :mod:`broker.audit.search`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, select

from broker.audit import store
from broker.audit.errors import AuditQueryError
from broker.audit.search import MAX_PAGE, SearchPage, decode_cursor, encode_cursor, entry_view
from broker.audit.tables import audit_entries

#: Rows read per round while filtering on the issuer (most rows match: the subject is the key).
BATCH = 200


@dataclass(frozen=True)
class UserRef:
    """A verified user of a party: the identity provider's issuer and their subject there."""

    party_id: str
    issuer: str
    subject: str


def is_entry_of(view: dict[str, object], user: UserRef) -> bool:
    """True when the entry's user is ``user``, verified by ``user.issuer``."""
    details = view.get("details")
    if not isinstance(details, dict):
        return False
    return (
        view.get("party_id") == user.party_id
        and view.get("user_id") == user.subject
        and details.get("user_verified") is True
        and details.get("user_issuer") == user.issuer
    )


def user_exchanges(
    engine: Engine, user: UserRef, *, cursor: str | None = None, limit: int = 50
) -> SearchPage:
    """The user's exchanges, newest first. Raises AuditQueryError for a bad cursor or limit."""
    if not 1 <= limit <= MAX_PAGE:
        raise AuditQueryError(f"limit must be between 1 and {MAX_PAGE}")
    c = audit_entries.c
    before = decode_cursor(cursor) if cursor is not None else None
    found: list[dict[str, object]] = []
    with store.reading(engine) as conn:
        while len(found) <= limit:
            query = (
                select(audit_entries)
                .where(
                    c.party_id == user.party_id,
                    c.user_id == user.subject,
                    c.kind == "exchange",
                )
                .order_by(c.idx.desc())
                .limit(BATCH)
            )
            if before is not None:
                query = query.where(c.idx < before)
            rows = conn.execute(query).all()
            for row in rows:
                view = entry_view(row)
                if is_entry_of(view, user):
                    found.append(view)
            if len(rows) < BATCH:
                break
            before = int(rows[-1].idx)
    more = len(found) > limit
    items = found[:limit]
    last = items[-1]["leaf_index"] if more else None
    next_cursor = encode_cursor(last) if isinstance(last, int) else None
    return SearchPage(items, next_cursor)
