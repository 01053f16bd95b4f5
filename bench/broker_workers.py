"""Launch the demo broker as N uvicorn worker processes (for ``exchange_bench.py --workers N``).

    PYTHONPATH=. /work/venv/bin/python bench/broker_workers.py --port 8000 --workers 2

``broker serve`` runs one process. This launcher answers "what would more processes give?":
it prepares the demo (secrets, schema, parties, clients) once, starts the demo sources in this
process, then runs uvicorn's process supervisor with ``--workers`` copies of the same app, each
with its own services over the same database, keys and source bindings. Settings come from the
same ``BROKER_*`` environment as ``broker serve --demo``, run from the same working directory.

Each worker has its own audit log writer: appends from different workers are serialised by the
database's write lock (``_lock_head`` takes it first), so every entry is still committed durably
before its answer, but workers do not share group commits. Per-client rate limits are per
process, so N workers allow N times the configured rate.
"""

from __future__ import annotations

import argparse
import json
import os

import uvicorn
from fastapi import FastAPI

from adapters.bindings import load_bindings
from adapters.demo.runtime import DEMO_BINDINGS_FILE, start_demo_sources
from broker.app import create_app
from broker.container import build_services
from broker.demo import bootstrap
from broker.observability import configure_logging
from broker.settings import load_settings

_VARIABLES = "BENCH_SOURCE_VARIABLES"


def make_app() -> FastAPI:
    """One worker's application (uvicorn calls this in every worker process)."""
    config = bootstrap.demo_settings(load_settings())
    configure_logging(config.log_level, config.log_json)
    bindings = load_bindings(DEMO_BINDINGS_FILE, variables=json.loads(os.environ[_VARIABLES]))
    services = build_services(config, bindings=bindings, run_migrations=False)
    return create_app(config, services)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    config = bootstrap.demo_settings(load_settings())
    configure_logging(config.log_level, config.log_json)
    bootstrap.prepare(config, bootstrap.DEMO_DIR / "keys")
    sources = start_demo_sources(bootstrap.DEMO_DIR / "sources")
    os.environ[_VARIABLES] = json.dumps(sources.variables)
    try:
        uvicorn.run(
            "bench.broker_workers:make_app",
            factory=True,
            workers=args.workers,
            host="127.0.0.1",
            port=args.port,
            log_config=None,
            access_log=False,
            server_header=False,
        )
    finally:
        sources.stop()


if __name__ == "__main__":
    main()
