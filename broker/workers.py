"""Serving from several processes: ``broker serve --workers N`` (or ``BROKER_WORKERS``).

One Python process runs Python code on about one core at a time (the GIL). With N > 1,
``broker serve`` does everything that must happen once in its own process: settings read and
derived (``--demo`` changes some), secrets checked, migrations run, and with ``--demo`` the demo's
parties, clients and source systems set up and started. Then :func:`run_workers` hands over to
uvicorn's process supervisor: N worker processes share the listening socket and each builds its
own services from the same settings (:func:`worker_app`, ``run_migrations=False``). The parent
keeps the demo sources running, restarts a worker that dies, and on SIGINT or SIGTERM stops the
workers and waits for them before it returns.

What a worker needs from the parent travels in one environment variable (:class:`WorkerPlan`),
inherited by the workers and never on a command line: the settings exactly as the parent derived
them (relative paths made absolute against the parent's working directory, and which of them were
set rather than defaulted, since some readers derive values from that, such as the demo's copy of
the agreements), the metrics directory, and the bindings of the demo's source systems (they run in
the parent, on ports chosen when it started). No secret value is in the settings: secrets live in
files named by them.

Across processes, through the database: the audit log (an append takes the log's write lock
first, so entries stay in one gap-free sequence), checkpoints (made under the same lock, once per
tree size), token replay, idempotency, verification limits, consents, the outbox (a delivery
claim is a lease), console sessions, the leases of periodic jobs (:mod:`broker.db.leases`).
Through Redis when ``BROKER_REDIS_URL`` is set, else per process: the per-client rate limit
(each process then allows 1/N: see :mod:`broker.exchange.limits`). Per process: the console's
sign-in throttle, caches. Metrics
are added up across processes (:mod:`broker.observability`).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from adapters.bindings import load_bindings
from broker.api.connections import server_options
from broker.app import create_app
from broker.container import build_services
from broker.core.errors import ConfigurationError
from broker.observability import build_metrics, configure_logging
from broker.settings import Settings

#: The environment variable that carries the plan from ``broker serve`` to its workers.
PLAN_VARIABLE = "BROKER_SERVE_WORKER_PLAN"
#: prometheus-client's own variable: it reads it when it is first imported.
METRICS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


@dataclass(frozen=True)
class WorkerPlan:
    """Everything a worker process builds its application from."""

    settings: Settings
    metrics_dir: Path
    """Where every process writes its metrics (also in ``PROMETHEUS_MULTIPROC_DIR``)."""
    bindings_file: Path | None = None
    """Bindings of the datasets to the sources started by the parent (the demo's), else None:
    each worker then reads ``settings.bindings_file`` itself."""
    bindings_variables: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "settings": json.loads(self.settings.model_dump_json()),
                "fields_set": sorted(self.settings.model_fields_set),
                "metrics_dir": str(self.metrics_dir),
                "bindings_file": None if self.bindings_file is None else str(self.bindings_file),
                "bindings_variables": dict(self.bindings_variables),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> WorkerPlan:
        """Raises ConfigurationError when ``text`` is not a plan written by :meth:`to_json`."""
        try:
            data = json.loads(text)
            # Every field is given, so nothing comes from this process's environment: these are
            # the parent's values, with the parent's record of which were set.
            values = Settings.model_validate(data["settings"])
            fields_set = {str(name) for name in data["fields_set"]}
            settings = Settings.model_construct(_fields_set=fields_set, **dict(values))
            bindings_file = data["bindings_file"]
            return cls(
                settings=settings,
                metrics_dir=Path(data["metrics_dir"]),
                bindings_file=None if bindings_file is None else Path(bindings_file),
                bindings_variables={str(k): str(v) for k, v in data["bindings_variables"].items()},
            )
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise ConfigurationError(f"{PLAN_VARIABLE} is not a worker plan: {e}") from e


def with_absolute_paths(settings: Settings, cwd: Path) -> Settings:
    """``settings`` with every relative path made absolute against ``cwd``; which fields were
    set stays as it was."""
    values = dict(settings)
    for name, value in values.items():
        if isinstance(value, Path) and not value.is_absolute():
            values[name] = cwd / value
    return Settings.model_construct(_fields_set=set(settings.model_fields_set), **values)


#: The core this process holds (its lock file stays open, so locked, while the process lives).
_held_core: int | None = None


def pin_to_a_free_core(lock_dir: Path) -> int | None:
    """Bind this process (and the threads it starts afterwards) to the first core of those it may
    use that no other worker holds, and hold it; None when every core is taken or the platform
    has no CPU affinity. Call before any thread starts."""
    global _held_core
    if _held_core is not None or not hasattr(os, "sched_setaffinity"):
        return _held_core
    for core in sorted(os.sched_getaffinity(0)):
        fd = os.open(lock_dir / f"core-{core}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        os.sched_setaffinity(0, {core})
        _held_core = core
        return core
    return None


def worker_app() -> FastAPI:
    """One worker's application (uvicorn calls this factory in every worker process).

    Raises ConfigurationError when the process was not started by :func:`run_workers`."""
    text = os.environ.get(PLAN_VARIABLE)
    if text is None:
        raise ConfigurationError(f"{PLAN_VARIABLE} is not set: start workers with broker serve")
    plan = WorkerPlan.from_json(text)
    config = plan.settings
    if config.pin_workers:
        pin_to_a_free_core(plan.metrics_dir)
    configure_logging(config.log_level, config.log_json)
    bindings = None
    if plan.bindings_file is not None:
        bindings = load_bindings(plan.bindings_file, variables=dict(plan.bindings_variables))
    services = build_services(
        config,
        bindings=bindings,
        run_migrations=False,  # the parent ran them before any worker started
        metrics=build_metrics(multiprocess_dir=plan.metrics_dir),
    )
    return create_app(config, services)


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set variables for the processes started inside the block (spawned children inherit
    the environment), then restore them."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_workers(
    settings: Settings,
    *,
    host: str,
    port: int,
    bindings_file: Path | None = None,
    bindings_variables: Mapping[str, str] | None = None,
) -> None:
    """Serve with ``settings.workers`` processes until SIGINT or SIGTERM; returns once every
    worker has exited. Metrics start from an empty directory, removed afterwards."""
    metrics_dir = Path(tempfile.mkdtemp(prefix="broker-metrics-"))
    plan = WorkerPlan(
        with_absolute_paths(settings, Path.cwd()),
        metrics_dir,
        bindings_file,
        dict(bindings_variables or {}),
    )
    try:
        with _environment({PLAN_VARIABLE: plan.to_json(), METRICS_VARIABLE: str(metrics_dir)}):
            uvicorn.run(
                f"{__name__}:worker_app",
                factory=True,
                workers=settings.workers,
                host=host,
                port=port,
                **server_options(settings),
            )
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
