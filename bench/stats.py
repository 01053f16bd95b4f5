"""Percentiles for benchmark output."""

from __future__ import annotations

import statistics


def summary(samples_seconds: list[float]) -> str:
    """``median X µs, p99 Y µs (n=N)`` for a list of durations in seconds."""
    ordered = sorted(samples_seconds)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"median {statistics.median(ordered) * 1e6:8.0f} µs   p99 {p99 * 1e6:8.0f} µs   "
        f"(n={len(ordered)})"
    )
