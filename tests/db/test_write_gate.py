"""The write gate: hot writers of several processes queue on a file lock beside the SQLite file."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from broker.db.engine import build_engine
from broker.db.gate import write_gate


def test_one_gate_per_database_file_and_none_for_postgres(tmp_path: Path) -> None:
    a = build_engine(f"sqlite:///{tmp_path / 'broker.db'}")
    b = build_engine(f"sqlite:///{tmp_path / 'broker.db'}")
    other = build_engine(f"sqlite:///{tmp_path / 'other.db'}")
    pg = build_engine("postgresql://postgres@127.0.0.1:5432/test")
    try:
        assert write_gate(a) is write_gate(b)
        assert write_gate(a) is not write_gate(other)
        assert write_gate(a).lock_file == tmp_path / "broker.db.writers"
        assert write_gate(pg).lock_file is None
        with write_gate(pg).held():  # a no-op: PostgreSQL queues writers itself
            pass
    finally:
        for engine in (a, b, other, pg):
            engine.dispose()


def test_threads_queue_on_the_gate(tmp_path: Path) -> None:
    gate = write_gate(build_engine(f"sqlite:///{tmp_path / 'broker.db'}"))
    inside: list[str] = []

    def second() -> None:
        with gate.held():
            inside.append("second")

    with gate.held():
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.2)  # let the second thread reach the gate (it passes either way if early)
        inside.append("first")
        assert inside == ["first"]
    thread.join(5)
    assert inside == ["first", "second"]


def test_another_process_holding_the_gate_makes_us_wait(tmp_path: Path) -> None:
    """Across processes the queue is the kernel's flock: we get in once the holder lets go."""
    database = tmp_path / "broker.db"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys\n"
            "from broker.db.engine import build_engine\n"
            "from broker.db.gate import write_gate\n"
            f"gate = write_gate(build_engine('sqlite:///{database}'))\n"
            "with gate.held():\n"
            "    print('held', flush=True)\n"
            "    sys.stdin.readline()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdin is not None
        assert holder.stdout.readline().strip() == "held"
        gate = write_gate(build_engine(f"sqlite:///{database}"))
        got_in = threading.Event()

        def enter() -> None:
            with gate.held():
                got_in.set()

        thread = threading.Thread(target=enter)
        thread.start()
        assert not got_in.wait(0.3)  # still held by the other process
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert got_in.wait(10)
        thread.join(5)
    finally:
        holder.kill()
        holder.communicate(timeout=5)  # waits, and closes the pipes
