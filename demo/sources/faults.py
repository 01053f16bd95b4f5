"""Fault injection for the demo HTTP sources (tests and demos of failure handling).

A :class:`Faults` object is shared between a test and a running demo server. Modes:

* ``slow``: wait ``delay_seconds`` before answering (a timeout for the adapter);
* ``error``: answer HTTP 500;
* ``garbage``: answer 200 with bytes that are not the expected JSON;
* ``invalid``: answer 200 with JSON that is not a valid answer (e.g. a malformed FHIR Bundle);
* ``wrong_person``: answer with another person's record;
* ``two_matches``: answer with two people.

``times`` limits how many requests are affected (``None``: all until cleared); ``skip`` lets
the first requests through untouched (e.g. fault the Encounter search after the Patient search).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

MODES = frozenset({"slow", "error", "garbage", "invalid", "wrong_person", "two_matches"})


@dataclass
class Faults:
    mode: str | None = None
    delay_seconds: float = 0.0
    times: int | None = None
    skip: int = 0
    requests_seen: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def set(
        self, mode: str, *, delay_seconds: float = 0.0, times: int | None = None, skip: int = 0
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown fault mode {mode!r}")
        with self._lock:
            self.mode, self.delay_seconds, self.times = mode, delay_seconds, times
            self.skip, self.requests_seen = skip, 0

    def clear(self) -> None:
        with self._lock:
            self.mode, self.delay_seconds, self.times = None, 0.0, None
            self.skip, self.requests_seen = 0, 0

    def take(self) -> str | None:
        """Count a request and return the fault to apply to it, if any."""
        with self._lock:
            self.requests_seen += 1
            if self.mode is None or self.requests_seen <= self.skip:
                return None
            if self.times is not None:
                if self.times <= 0:
                    return None
                self.times -= 1
            return self.mode
