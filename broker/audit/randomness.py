"""Random bytes for salts and exchange ids, drawn from the OS in blocks.

Every append needs about 74 random bytes. Asking the OS each time costs a system call that gives
up Python's global lock, and with dozens of appending threads each re-acquisition waits in line.
Each thread instead draws 4 KiB at a time from ``os.urandom`` and hands out slices of it (no lock
needed). A forked child discards what its parent had drawn, so the two never share bytes.
"""

from __future__ import annotations

import os
import threading

_BLOCK = 4096
_generation = 0


class _ThreadPool(threading.local):
    buffer: bytes = b""
    pos: int = 0
    generation: int = -1


_local = _ThreadPool()


def _after_fork_in_child() -> None:
    global _generation
    _generation += 1


os.register_at_fork(after_in_child=_after_fork_in_child)


def random_bytes(n: int) -> bytes:
    """``n`` bytes from the operating system's CSPRNG; no byte is handed out twice."""
    pool = _local
    if pool.generation != _generation or pool.pos + n > len(pool.buffer):
        pool.buffer = os.urandom(max(_BLOCK, n))
        pool.pos = 0
        pool.generation = _generation
    start = pool.pos
    pool.pos = start + n
    return pool.buffer[start : start + n]
