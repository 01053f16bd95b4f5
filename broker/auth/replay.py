"""Replay protection for client assertions: a ``jti`` is accepted once within its lifetime.

The store is the database, so the check holds across every broker process sharing it.
Callers store a ``jti`` only after the assertion's signature verified, so nobody without a
client's private key can fill the table.
"""

from __future__ import annotations

import threading
from typing import Protocol

from sqlalchemy import Engine, delete, insert
from sqlalchemy.exc import IntegrityError

from broker.db.tables import assertion_jtis


class ReplayStore(Protocol):
    def remember(self, client_id: str, jti: str, expires_at: int, now: int) -> bool:
        """Record ``jti``; False when it was already recorded and has not expired."""
        ...


class SqlReplayStore:
    """The database-backed store. Expired rows are purged now and then, never on every call."""

    def __init__(self, engine: Engine, purge_every: int = 500) -> None:
        self._engine = engine
        self._purge_every = purge_every
        self._count = 0
        self._lock = threading.Lock()

    def remember(self, client_id: str, jti: str, expires_at: int, now: int) -> bool:
        with self._lock:
            self._count += 1
            purge = self._count % self._purge_every == 0
        try:
            with self._engine.begin() as conn:
                if purge:
                    conn.execute(delete(assertion_jtis).where(assertion_jtis.c.expires_at < now))
                conn.execute(
                    insert(assertion_jtis).values(
                        client_id=client_id, jti=jti, expires_at=expires_at
                    )
                )
        except IntegrityError:
            # Seen before. If that row has expired the assertion is expired too (exp is
            # checked first), so refusing is always right.
            return False
        return True
