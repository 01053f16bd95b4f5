"""The write gate: the hot write transactions of every broker process on one SQLite database
queue for it instead of polling for SQLite's lock.

SQLite lets one writer in at a time. A writer that finds the database locked is put off by the
busy handler, which sleeps (1, 2, 5, 10 ms and longer) between tries. With several server
processes appending to the audit log and claiming notifications at once, that sleeping, not the
work, sets the pace: two processes made fewer exchanges per second than one. The gate turns the
polling into a queue: a lock within the process, then an exclusive ``flock`` on a file beside the
database across processes; the kernel hands it to the next waiter as soon as it is released.

Only the writes made on every exchange take the gate (the audit commit with its outbox row, and
the delivery worker's claim and record). Other writers (registry, consents, the CLI) are rare and
still meet SQLite's own lock, so correctness never depends on the gate: it only orders the
frequent writers. PostgreSQL queues writers on its row lock already: there, the gate is a no-op.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine

_gates: dict[str, WriteGate] = {}
_gates_lock = threading.Lock()


class WriteGate:
    """Hold :meth:`held` around one write transaction. Thread-safe; one per database file."""

    def __init__(self, lock_file: Path | None) -> None:
        self._path = lock_file
        self._thread_lock = threading.Lock()
        self._fd: int | None = None

    @property
    def lock_file(self) -> Path | None:
        return self._path

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        if self._path is None:
            yield
            return
        with self._thread_lock:
            if self._fd is None:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)


def write_gate(engine: Engine) -> WriteGate:
    """The gate of ``engine``'s database: shared by every user of that file in this process."""
    url = engine.url
    database = url.database if url.get_backend_name() == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        return WriteGate(None)
    lock_file = Path(database).resolve().with_name(Path(database).name + ".writers")
    key = str(lock_file)
    with _gates_lock:
        gate = _gates.get(key)
        if gate is None:
            gate = _gates[key] = WriteGate(lock_file)
        return gate
