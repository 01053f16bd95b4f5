"""Structured logs and Prometheus metrics.

Logs are JSON lines carrying the request id. A redaction step drops the value of any key that
could hold a secret or a person's identifier, so a careless ``log.info(..., token=t)`` leaks
nothing. Metrics live in a registry owned by one application instance (no import-time globals).

With several server processes (``broker serve --workers N``) a scrape reaches one of them, so
the metrics use prometheus-client's multiprocess mode: ``broker serve`` points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before the workers start (prometheus-client
reads it when it is imported), every process writes its values to files there, and
:func:`exposition` adds up the files of every process, including processes that have exited.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from broker.core.errors import ConfigurationError

#: Keys whose values never reach a log line (matched as substrings, case-insensitive).
SENSITIVE_KEY_PARTS = (
    "token",
    "assertion",
    "authorization",
    "secret",
    "password",
    "private",
    "key",
    "nhs",
    "subject",
    "identifier",
    "cookie",
    "claims",
    "justification",
    "case_reference",
)
_ALLOWED_KEYS = frozenset({"event", "level", "timestamp", "request_id", "logger", "kid"})


def redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for name in list(event_dict):
        lowered = name.lower()
        if name not in _ALLOWED_KEYS and any(part in lowered for part in SENSITIVE_KEY_PARTS):
            event_dict[name] = "[redacted]"
    return event_dict


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure_logging(level: str = "INFO", json_lines: bool = True) -> None:
    """Route structlog and the standard library's logs to stderr, as JSON lines by default."""
    renderer: Any = (
        structlog.processors.JSONRenderer() if json_lines else structlog.dev.ConsoleRenderer()
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
    ]
    structlog.configure(
        # filter_by_level first: a line below the level is dropped before the other processors
        # run (at WARNING the per-request "request" line cost 24 µs, now about 6 µs).
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = _StderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's access log would print raw paths and query strings: ours logs route templates.
    logging.getLogger("uvicorn.access").disabled = True
    # Alembic narrates every migration at INFO; keep that for --log-level DEBUG.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    http_requests: Counter
    http_latency: Histogram
    token_requests: Counter
    auth_failures: Counter
    agreements_in_force: Gauge
    """Agreements the serving policy may allow exchanges under (0 on a fresh install; alert on
    it elsewhere). With several processes, the lowest of the live processes."""
    break_glass_overdue: Gauge
    """Break-glass reviews past their due time, per agreement (set by the escalation job on the
    instance holding the audit jobs' lease)."""
    multiprocess_dir: Path | None = None
    """Set when several processes serve: where every process writes its values."""

    def exposition(self) -> bytes:
        """The Prometheus text format of this process's metrics, or of every process's."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(  # type: ignore[no-untyped-call]
            registry, path=str(self.multiprocess_dir)
        )
        return generate_latest(registry)

    def process_exiting(self) -> None:
        """Drop this process's live gauges from the shared directory (its counters stay)."""
        if self.multiprocess_dir is not None:
            multiprocess.mark_process_dead(  # type: ignore[no-untyped-call]
                os.getpid(), str(self.multiprocess_dir)
            )


def build_metrics(*, multiprocess_dir: Path | None = None) -> Metrics:
    """The broker's metrics. ``multiprocess_dir`` must be the ``PROMETHEUS_MULTIPROC_DIR`` this
    process started with; raises ConfigurationError otherwise (no value would reach the files)."""
    if multiprocess_dir is not None and os.environ.get("PROMETHEUS_MULTIPROC_DIR") != str(
        multiprocess_dir
    ):
        raise ConfigurationError(
            f"PROMETHEUS_MULTIPROC_DIR must be {multiprocess_dir} when this process starts"
        )
    registry = CollectorRegistry(auto_describe=True)
    return Metrics(
        multiprocess_dir=multiprocess_dir,
        registry=registry,
        http_requests=Counter(
            "broker_http_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=registry,
        ),
        http_latency=Histogram(
            "broker_http_request_duration_seconds",
            "HTTP request latency by route template and method",
            ["route", "method"],
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=registry,
        ),
        token_requests=Counter(
            "broker_token_requests",
            "Token endpoint outcomes: issued, or the refusal reason",
            ["outcome", "reason"],
            registry=registry,
        ),
        auth_failures=Counter(
            "broker_auth_failures",
            "Refused access tokens and scopes on protected routes",
            ["reason"],
            registry=registry,
        ),
        agreements_in_force=Gauge(
            "broker_agreements_in_force",
            "Agreements the serving policy revision may allow exchanges under",
            registry=registry,
            multiprocess_mode="livemin",
        ),
        break_glass_overdue=Gauge(
            "broker_break_glass_reviews_overdue",
            "Break-glass exchanges not reviewed by their agreement's review_within_days",
            ["agreement"],
            registry=registry,
            multiprocess_mode="livemax",
        ),
    )
