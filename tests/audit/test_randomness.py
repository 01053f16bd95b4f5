from __future__ import annotations

import os
import threading

import pytest

from broker.audit.randomness import random_bytes


def test_slices_are_never_handed_out_twice() -> None:
    seen = {random_bytes(16) for _ in range(2000)}  # crosses several 4 KiB blocks
    assert len(seen) == 2000
    assert len(random_bytes(5000)) == 5000


def test_threads_draw_independent_bytes() -> None:
    results: list[bytes] = []
    lock = threading.Lock()

    def draw() -> None:
        mine = [random_bytes(16) for _ in range(300)]
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=draw) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == len(results) == 2400


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_repeat_its_parents_bytes() -> None:
    random_bytes(16)  # the parent has a partly used block now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, random_bytes(16))
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 16)
    os.close(read)
    os.close(write)
    assert child != random_bytes(16)
