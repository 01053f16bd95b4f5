"""Leases: a periodic job runs on one instance at a time, across every instance on a database.

A lease is a row of ``leases`` (name, holder, expires_ms). :meth:`Lease.held` takes or renews it
with one conditional statement (an INSERT whose conflict becomes an UPDATE only when this
instance holds the lease already or it has expired): it holds when a row changed. The holder
renews every third of the lease's length; the others try again every ``retry_seconds`` and skip
the job meanwhile. An instance that dies stops renewing, and another takes over once its lease
expires (``job_lease_seconds``, 15 s by default); one that stops cleanly releases it at once.

Every job guarded so is also safe when two instances run it at once (checkpoints are made under
the log's write lock, once per tree size; an outbox row is claimed before delivery): the lease
keeps the work, and the load on the database, to one instance; it is not what keeps them right.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine, delete
from sqlalchemy.dialects import postgresql, sqlite

from broker.db.tables import leases


def instance_id() -> str:
    """This process's name as a lease holder: host, process id and a random part."""
    return f"{socket.gethostname()[:120]}:{os.getpid()}:{secrets.token_hex(4)}"


class Lease:
    """One named lease as seen by one holder."""

    def __init__(
        self,
        engine: Engine,
        name: str,
        *,
        holder: str,
        seconds: float = 15.0,
        retry_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if seconds <= 0 or retry_seconds <= 0:
            raise ValueError("lease and retry times must be positive")
        self._engine = engine
        self.name = name
        self.holder = holder
        self._ms = int(seconds * 1000)
        self._retry_ms = int(retry_seconds * 1000)
        self._clock = clock
        self._holding = False
        self._next_ms = 0
        self._lock = threading.Lock()

    def held(self) -> bool:
        """True when this holder has the lease now (taken or renewed when due)."""
        with self._lock:
            now = int(self._clock() * 1000)
            if now < self._next_ms:
                return self._holding
            try:
                self._holding = self._take(now)
            except Exception:  # the database is down: hold nothing, try again later
                self._holding = False
                self._next_ms = now + self._retry_ms
                raise
            self._next_ms = now + (self._ms // 3 if self._holding else self._retry_ms)
            return self._holding

    def _take(self, now_ms: int) -> bool:
        dialect = self._engine.dialect.name
        if dialect not in ("postgresql", "sqlite"):
            raise NotImplementedError(f"leases on {dialect}")
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        values = {"name": self.name, "holder": self.holder, "expires_ms": now_ms + self._ms}
        statement = insert(leases).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=[leases.c.name],
            set_={"holder": statement.excluded.holder, "expires_ms": statement.excluded.expires_ms},
            where=(leases.c.holder == self.holder) | (leases.c.expires_ms <= now_ms),
        )
        # RETURNING rather than rowcount: psycopg reports no row count for an upsert's update.
        with self._engine.begin() as conn:
            return conn.execute(statement.returning(leases.c.holder)).first() is not None

    def release(self) -> None:
        """Give the lease up (on a clean stop), so that another instance takes it at once."""
        with self._lock:
            self._holding = False
            self._next_ms = 0
            with self._engine.begin() as conn:
                conn.execute(
                    delete(leases).where(leases.c.name == self.name, leases.c.holder == self.holder)
                )


class JobLeases:
    """The leases of the broker's periodic jobs, held by one instance (process) each."""

    AUDIT = "audit-jobs"
    """Checkpoints when due, and redaction by retention."""
    OUTBOX = "outbox-delivery"
    """Provider notifications (webhooks)."""

    def __init__(
        self, engine: Engine, *, seconds: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.holder = instance_id()
        self.audit = Lease(engine, self.AUDIT, holder=self.holder, seconds=seconds, clock=clock)
        self.outbox = Lease(engine, self.OUTBOX, holder=self.holder, seconds=seconds, clock=clock)
        self._closed = False

    def release(self) -> None:
        """Give every lease up (a clean stop); errors are the caller's to ignore. Nothing once
        :meth:`close` has run (the engine may be disposed by then)."""
        if self._closed:
            return
        self.audit.release()
        self.outbox.release()

    def close(self) -> None:
        """Give every lease up, for the last time (before the engine is disposed): whichever of
        the app's shutdown and the services' close comes first releases them."""
        try:
            self.release()
        finally:
            self._closed = True
