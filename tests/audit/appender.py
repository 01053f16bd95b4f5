"""One OS process appending from many threads (run by test_processes.py, not collected)."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

from broker.audit.checkpoint import load_log_key
from broker.audit.log import AuditLog, LogSigner
from broker.audit.store import CheckpointPolicy
from broker.db.engine import build_engine
from tests.audit.conftest import ORIGIN, make_entry


def main(url: str, key_path: str, threads: int, per_thread: int, tag: int) -> None:
    engine = build_engine(url, pool_size=threads)
    log = AuditLog(
        engine,
        LogSigner(ORIGIN, load_log_key(Path(key_path))),
        policy=CheckpointPolicy(every_entries=37, every_seconds=3600),
    )
    barrier = threading.Barrier(threads)
    indexes: list[int] = []
    lock = threading.Lock()

    def work(t: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            got = log.append(make_entry(tag * 100_000 + t * 1000 + i)).leaf_index
            with lock:
                indexes.append(got)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    engine.dispose()
    print(json.dumps(indexes))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
