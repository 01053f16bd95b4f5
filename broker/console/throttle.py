"""Sign-in attempts per client address: a sliding window kept in memory (per process).

The per-account lock in :mod:`broker.console.accounts` stops guessing one password; this stops
one address trying many usernames (and filling the audit log with refused sign-ins). With several
server processes each holds a share of the limit (``build_console`` divides it by the number).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from broker.console.errors import ConsoleError
from broker.core.errors import TooManyRequests


class TooManyAttempts(ConsoleError, TooManyRequests):
    title = "Too many sign-in attempts"


class AddressThrottle:
    def __init__(
        self,
        *,
        attempts: int = 20,
        window_seconds: float = 300.0,
        max_addresses: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._attempts = attempts
        self._window = window_seconds
        self._max_addresses = max_addresses
        self._clock = clock
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, address: str) -> None:
        """Count one attempt from ``address``. Raises TooManyAttempts over the limit."""
        now = self._clock()
        with self._lock:
            if len(self._seen) >= self._max_addresses and address not in self._seen:
                self._forget_idle(now)
            times = self._seen.setdefault(address, deque())
            while times and now - times[0] > self._window:
                times.popleft()
            if len(times) >= self._attempts:
                wait = times[-self._attempts] + self._window - now
                raise TooManyAttempts(
                    "too many sign-in attempts from your address: wait a while",
                    max(1, math.ceil(wait)),
                )
            times.append(now)

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, t in self._seen.items() if not t or now - t[-1] > self._window]:
            del self._seen[key]
        if len(self._seen) >= self._max_addresses:  # still full: drop the oldest half
            for key in sorted(self._seen, key=lambda k: self._seen[k][-1])[: len(self._seen) // 2]:
                del self._seen[key]
