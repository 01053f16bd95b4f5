"""Full log verification started from the console, run in a background thread.

One run at a time. Progress (entries checked of the total) is kept in memory for the page to
poll; the start and the result are stored in ``console_verifications`` so the integrity page can
say when the log was last fully verified and what was found.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, insert, select, update

from broker.audit.log import AuditLog
from broker.audit.verify import VerifyReport, verify_log
from broker.console.tables import console_verifications
from broker.core.errors import Conflict


@dataclass(frozen=True)
class RunState:
    """A run's state for the page: ``running`` with progress, or finished with a result."""

    run_id: int
    started_by: str
    started_ms: int
    running: bool
    done: int
    total: int
    finished_ms: int | None = None
    ok: bool | None = None
    entries_checked: int | None = None
    problems: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "run_id": self.run_id,
            "running": self.running,
            "done": self.done,
            "total": self.total,
            "ok": self.ok,
            "entries_checked": self.entries_checked,
            "problems": list(self.problems),
        }


def _now_ms() -> int:
    return int(time.time() * 1000)


class Verifier:
    def __init__(self, engine: Engine, log: AuditLog, clock_ms: Callable[[], int] = _now_ms):
        self._engine = engine
        self._log = log
        self._clock_ms = clock_ms
        self._lock = threading.Lock()
        self._current: RunState | None = None
        self._thread: threading.Thread | None = None

    def start(self, started_by: str) -> RunState:
        """Start a run. Raises :class:`Conflict` when one is running already."""
        with self._lock:
            if self._current is not None and self._current.running:
                raise Conflict("a verification is running already")
            now = self._clock_ms()
            with self._engine.begin() as conn:
                run_id = conn.execute(
                    insert(console_verifications).values(started_by=started_by, started_ms=now)
                ).inserted_primary_key
            assert run_id is not None
            state = RunState(int(run_id[0]), started_by, now, True, 0, self._log.size())
            self._current = state
            self._thread = threading.Thread(target=self._run, args=(state,), daemon=True)
            self._thread.start()
            return state

    def _progress(self, done: int, total: int) -> None:
        with self._lock:
            if self._current is not None:
                c = self._current
                self._current = RunState(c.run_id, c.started_by, c.started_ms, True, done, total)

    def _run(self, state: RunState) -> None:
        try:
            report = verify_log(
                self._engine,
                self._log.signer.public_key,
                origin=self._log.signer.origin,
                progress=self._progress,
            )
        except Exception as e:  # a run that could not finish is a failed verification
            report = VerifyReport(0, 0, 0, ())
            problems: tuple[str, ...] = (f"verification could not run: {type(e).__name__}",)
            ok = False
        else:
            problems = tuple(p.message for p in report.problems)
            ok = report.ok
        finished = self._clock_ms()
        with self._engine.begin() as conn:
            conn.execute(
                update(console_verifications)
                .where(console_verifications.c.id == state.run_id)
                .values(
                    finished_ms=finished,
                    ok=ok,
                    entries_checked=report.entries_checked,
                    result=json.dumps({"problems": list(problems)}),
                )
            )
        with self._lock:
            self._current = RunState(
                state.run_id,
                state.started_by,
                state.started_ms,
                False,
                report.entries_checked,
                state.total,
                finished,
                ok,
                report.entries_checked,
                problems,
            )

    def current(self) -> RunState | None:
        """The run in progress or the last one of this process."""
        with self._lock:
            return self._current

    def join(self, timeout: float | None = None) -> None:
        """Wait for the running verification (tests, shutdown)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def last_finished(self) -> RunState | None:
        """The newest finished run recorded in the database (any process)."""
        v = console_verifications.c
        with self._engine.connect() as conn:
            row = conn.execute(
                select(console_verifications)
                .where(v.finished_ms.is_not(None))
                .order_by(v.id.desc())
                .limit(1)
            ).first()
        if row is None:
            return None
        problems = tuple(json.loads(row.result or "{}").get("problems", []))
        return RunState(
            row.id,
            row.started_by,
            row.started_ms,
            False,
            row.entries_checked or 0,
            row.entries_checked or 0,
            row.finished_ms,
            bool(row.ok),
            row.entries_checked,
            problems,
        )
