"""Verified users suspended by a governance officer of their party.

A user is named as the identity provider's issuer and their subject there (never a display name),
within the party whose systems they work for. While suspended, the token exchange issues them no
user-restricted token and the exchange refuses their requests (403, logged as a denied exchange).

Every suspension and reinstatement is an ``admin_events`` row in the same transaction. Reads go
through a snapshot of the whole (small) table refreshed at most every ``refresh_seconds`` (one
second by default), so a suspension made on one instance, or by the CLI, holds on every instance
within two seconds without a query per request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError

from broker.audit.admin import log_admin_event
from broker.core.errors import Conflict, FieldProblem, InvalidInput, NotFound
from broker.db.tables import parties
from broker.identity.tables import user_suspensions

#: How old the snapshot may be: with the next request's refresh, a suspension holds everywhere
#: within two seconds.
REFRESH_SECONDS = 1.0
MAX_REASON_CHARS = 2000


@dataclass(frozen=True)
class Suspension:
    party_id: str
    issuer: str
    subject: str
    reason: str
    suspended_by: str
    suspended_ms: int

    def to_json(self) -> dict[str, object]:
        return {
            "party_id": self.party_id,
            "issuer": self.issuer,
            "subject": self.subject,
            "reason": self.reason,
            "suspended_by": self.suspended_by,
            "suspended_ms": self.suspended_ms,
        }


def _from_row(r: Any) -> Suspension:
    return Suspension(
        party_id=r.party_id,
        issuer=r.issuer,
        subject=r.subject,
        reason=r.reason,
        suspended_by=r.suspended_by,
        suspended_ms=int(r.suspended_ms),
    )


def check_user(issuer: str, subject: str, reason: str | None = None) -> None:
    """Raise InvalidInput naming every bad part of a user named for a suspension."""
    problems: list[FieldProblem] = []
    if not issuer.strip() or len(issuer) > 500:
        problems.append(FieldProblem("issuer", "the identity provider's issuer (1-500 characters)"))
    if not subject.strip() or len(subject) > 255:
        problems.append(FieldProblem("subject", "the user's subject there (1-255 characters)"))
    if reason is not None and (not reason.strip() or len(reason) > MAX_REASON_CHARS):
        problems.append(FieldProblem("reason", f"say why (1-{MAX_REASON_CHARS} characters)"))
    if problems:
        raise InvalidInput("the user is not named correctly", problems)


class UserSuspensions:
    """The suspended users of every party (a snapshot for the hot paths)."""

    def __init__(
        self,
        engine: Engine,
        *,
        refresh_seconds: float = REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._refresh = refresh_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._snapshot: dict[tuple[str, str, str], Suspension] | None = None
        self._read_at = 0.0

    def suspend(
        self, party_id: str, issuer: str, subject: str, *, reason: str, actor: str
    ) -> Suspension:
        """Raises InvalidInput, NotFound (party), Conflict (suspended already)."""
        check_user(issuer, subject, reason)
        row = Suspension(
            party_id=party_id,
            issuer=issuer,
            subject=subject,
            reason=reason.strip(),
            suspended_by=actor,
            suspended_ms=int(time.time() * 1000),
        )
        try:
            with self._engine.begin() as conn:
                found = conn.execute(select(parties.c.id).where(parties.c.id == party_id)).first()
                if found is None:
                    raise NotFound(f"no party {party_id!r}")
                conn.execute(insert(user_suspensions).values(**row.to_json()))
                log_admin_event(
                    conn,
                    actor=actor,
                    action="user.suspend",
                    target=party_id,
                    details={"issuer": issuer, "subject": subject, "reason": row.reason},
                )
        except IntegrityError as e:
            raise Conflict(f"user {subject!r} of party {party_id} is suspended already") from e
        self.invalidate()
        return row

    def reinstate(
        self, party_id: str, issuer: str, subject: str, *, reason: str, actor: str
    ) -> None:
        """Raises InvalidInput, NotFound (not suspended)."""
        check_user(issuer, subject, reason)
        c = user_suspensions.c
        with self._engine.begin() as conn:
            result = conn.execute(
                delete(user_suspensions).where(
                    c.party_id == party_id, c.issuer == issuer, c.subject == subject
                )
            )
            if result.rowcount == 0:
                raise NotFound(f"user {subject!r} of party {party_id} is not suspended")
            log_admin_event(
                conn,
                actor=actor,
                action="user.reinstate",
                target=party_id,
                details={"issuer": issuer, "subject": subject, "reason": reason.strip()},
            )
        self.invalidate()

    def invalidate(self) -> None:
        with self._lock:
            self._snapshot = None

    def _all(self) -> dict[tuple[str, str, str], Suspension]:
        with self._lock:
            now = self._clock()
            if self._snapshot is None or now - self._read_at >= self._refresh:
                with self._engine.connect() as conn:
                    rows = conn.execute(select(user_suspensions)).all()
                self._snapshot = {(r.party_id, r.issuer, r.subject): _from_row(r) for r in rows}
                self._read_at = now
            return self._snapshot

    def get(self, party_id: str, issuer: str, subject: str) -> Suspension | None:
        """The user's suspension, as of at most ``refresh_seconds`` ago."""
        return self._all().get((party_id, issuer, subject))

    def suspended(self, party_id: str, issuer: str, subject: str) -> bool:
        return self.get(party_id, issuer, subject) is not None

    def list(self, party_id: str | None = None) -> list[Suspension]:
        """Suspended users (of one party), newest first, read now (not from the snapshot)."""
        query = select(user_suspensions).order_by(user_suspensions.c.suspended_ms.desc())
        if party_id is not None:
            query = query.where(user_suspensions.c.party_id == party_id)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [_from_row(r) for r in rows]
