"""Administrative acts: each one an ``admin_events`` row *and* an entry of the tamper-evident log,
written in the caller's own transaction (so the act, its row and its entry commit together or not
at all: an act is never visible without its log entry).

:func:`log_admin_event` is the one writer every store calls. The entry (kind ``admin``) holds, in
clear: the actor (also as ``client_id``, when it fits), the party concerned, the action, the target
and the details, minus personal values: a staff or citizen subject, a pseudonym, a free-text reason,
and the target of a citizen link. Those go into the entry's ``user_id`` personal field as one
RFC 8785 JSON object: the leaf holds only its salted commitment, the value sits beside the leaf and
is redactable like any personal value. No secret or key material is ever passed in (the stores log
key ids, never keys or webhook secrets).

:func:`check_admin_events` (run by ``verify_log``) compares every ``admin_events`` row with its
entry: a row naming no entry, a row that differs from its entry, and an entry whose row is gone are
all reported. Rows written before migration 0017 name no entry; they are accepted only while they
all precede (by id) the first row that does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from broker.audit import store
from broker.audit.entry import (
    AuditEntry,
    JsonValue,
    canonical_json,
    new_exchange_id,
    parse_leaf,
    parse_time_ms,
    seal,
)
from broker.audit.errors import AuditUnavailableError
from broker.audit.tables import audit_entries
from broker.db.tables import admin_events

#: Detail keys whose values identify a person (or are free text that may): never in a leaf in clear.
PERSONAL_KEYS: Final = frozenset({"subject", "oidc_subject", "identifier_pseudonym", "reason"})
#: Actions whose target identifies a person.
PERSONAL_TARGETS: Final = frozenset({"citizen.link"})
#: Actions whose target is a party id (the entry's ``party_id``).
_PARTY_TARGETS: Final = ("party.", "webhooks.", "idp.", "citizen-idp.", "user.", "parties.")
#: Marks the entries :func:`log_admin_event` writes (each has an ``admin_events`` row).
TABLE_MARK: Final = "admin_events"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_CLIENT_ID_MAX: Final = 100


def time_ms(at: datetime) -> int:
    """Milliseconds since the epoch (a naive time, as SQLite returns it, is UTC)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return (at - _EPOCH) // timedelta(milliseconds=1)


def entry_parts(
    actor: str, action: str, target: str, details: Mapping[str, JsonValue]
) -> tuple[dict[str, JsonValue], str | None]:
    """The leaf's ``details`` of an admin act and its personal values (RFC 8785 JSON, or None).

    The one split used when writing and again when verifying a row against its entry."""
    personal: dict[str, JsonValue] = {k: details[k] for k in sorted(details) if k in PERSONAL_KEYS}
    public = {k: v for k, v in details.items() if k not in PERSONAL_KEYS}
    if action in PERSONAL_TARGETS:
        personal["target"] = target
    shown: dict[str, JsonValue] = {
        "action": action,
        "actor": actor,
        "target": None if action in PERSONAL_TARGETS else target,
        "details": public,
        "table": TABLE_MARK,
    }
    if not personal:
        return shown, None
    shown["personal"] = sorted(personal)
    return shown, canonical_json(personal).decode()


def _party_of(action: str, target: str, details: Mapping[str, JsonValue]) -> str | None:
    if action.startswith(_PARTY_TARGETS):
        return target
    party = details.get("party") or details.get("party_id")
    return party if isinstance(party, str) else None


def log_admin_event(
    conn: Connection,
    *,
    actor: str,
    action: str,
    target: str,
    details: Mapping[str, JsonValue],
    at: datetime | None = None,
    party_id: str | None = None,
) -> str:
    """Record one administrative act in ``conn``'s open transaction: an entry of the audit log
    and an ``admin_events`` row naming it. Returns the entry's id.

    Raises :class:`AuditUnavailableError` when the log cannot take the entry (the caller's
    transaction must then roll back: nothing of the act stays), ``IntegrityError`` unchanged."""
    at = at or datetime.now(UTC)
    shown, personal = entry_parts(actor, action, target, details)
    at_ms = time_ms(at)
    entry = AuditEntry(
        kind="admin",
        exchange_id=new_exchange_id(at_ms),
        time_ms=at_ms,
        client_id=actor if len(actor) <= _CLIENT_ID_MAX else None,
        party_id=party_id or _party_of(action, target, details),
        user_id=personal,
        details=shown,
    )
    try:
        store.append_in(conn, seal(entry))
        conn.execute(
            insert(admin_events).values(
                at=at,
                actor=actor,
                action=action,
                target=target,
                details=dict(details),
                entry_id=entry.exchange_id,
            )
        )
    except IntegrityError:
        raise
    except SQLAlchemyError as e:
        raise AuditUnavailableError(f"the administrative act could not be logged: {e}") from e
    return entry.exchange_id


# --- verification -----------------------------------------------------------------------------


def _row_problem(row: Any, what: str) -> str:
    return f"admin_events row {row.id} ({row.action} {row.target!r}): {what}"


def check_admin_events(conn: Connection) -> list[tuple[str, int | None, str | None]]:
    """Compare every ``admin_events`` row with its log entry, in ``conn``'s snapshot.

    Returns ``(message, entry index or None, entry id or None)`` for each finding."""
    found: list[tuple[str, int | None, str | None]] = []
    c = audit_entries.c
    entries: dict[str, tuple[int, dict[str, JsonValue], str | None]] = {}
    for idx, exchange_id, leaf, user_id in conn.execute(
        select(c.idx, c.exchange_id, c.leaf, c.user_id).where(c.kind == "admin").order_by(c.idx)
    ):
        try:
            _, body = parse_leaf(bytes(leaf))
        except ValueError:
            continue  # the log scan reports the leaf itself
        details = body.get("details")
        if isinstance(details, dict) and details.get("table") == TABLE_MARK:
            entries[str(exchange_id)] = (int(idx), body, user_id)
    rows = conn.execute(select(admin_events).order_by(admin_events.c.id)).all()
    first_logged = min((r.id for r in rows if r.entry_id is not None), default=None)
    seen: set[str] = set()
    for row in rows:
        if row.entry_id is None:
            if first_logged is not None and row.id > first_logged:
                what = "is in no log entry (added to the table?)"
                found.append((_row_problem(row, what), None, None))
            continue
        entry = entries.get(str(row.entry_id))
        if entry is None:
            found.append(
                (
                    _row_problem(row, f"names log entry {row.entry_id}: no such admin act"),
                    None,
                    str(row.entry_id),
                )
            )
            continue
        seen.add(str(row.entry_id))
        index, body, user_id = entry
        differs = _differences(row, body, user_id)
        if differs:
            found.append(
                (
                    _row_problem(row, f"differs from log entry {index} ({', '.join(differs)})"),
                    index,
                    str(row.entry_id),
                )
            )
    for exchange_id, (index, body, _) in entries.items():
        if exchange_id not in seen:
            details = body["details"]
            found.append(
                (
                    f"log entry {index} records admin act {details.get('action')}"
                    f" {details.get('target')!r} but its admin_events row is gone",
                    index,
                    exchange_id,
                )
            )
    return found


def _differences(row: Any, body: Mapping[str, JsonValue], user_id: str | None) -> Sequence[str]:
    if not isinstance(row.details, dict):
        return ["details (not a JSON object)"]
    shown, personal = entry_parts(row.actor, row.action, row.target, row.details)
    differs = []
    if body.get("details") != shown:
        differs.append("actor, action, target or details")
    try:
        if time_ms(row.at) != parse_time_ms(str(body["time"])):
            differs.append("time")
    except (TypeError, ValueError, KeyError):
        differs.append("time")
    committed = (body.get("commitments") or {}).get("user_id")
    if (personal is None) != (committed is None):
        differs.append("personal values")
    elif personal is not None and user_id is not None and user_id != personal:
        differs.append("personal values")  # None with a commitment: redacted, checked by the scan
    return differs
