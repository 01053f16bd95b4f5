"""Start every demo source system on this machine and bind the demo datasets to them.

:func:`start_demo_sources` writes the council's SQLite databases and the proof document store
under a directory, serves the NHS FHIR server and the police REST service on free loopback ports
(aiohttp, in one background thread with its own event loop), and returns a :class:`DemoSources`
with the concrete bindings. ``stop()`` (or leaving the ``with`` block) shuts the servers down.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from aiohttp import web
from sqlalchemy import create_engine

from adapters.bindings import BindingSet, load_bindings
from adapters.documents import FileDocumentStore
from broker.core.identifiers import SubjectId
from demo.sources.council_db import SYSTEMS, write_system
from demo.sources.faults import Faults
from demo.sources.fhir_server import build_fhir_app
from demo.sources.police_server import build_police_app
from demo.sources.population import DEFAULT_RESIDENTS, DEFAULT_SEED, generate
from demo.sources.records import Population
from demo.sources.webhook_receiver import PATH as WEBHOOK_PATH
from demo.sources.webhook_receiver import DemoWebhookReceiver

#: The bindings file of the demo datasets.
DEMO_BINDINGS_FILE = Path(__file__).resolve().parent / "bindings.yaml"


class ServerThread:
    """aiohttp applications served from one background thread on loopback ports."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="demo-sources", daemon=True
        )
        self._runners: list[web.AppRunner] = []
        self._thread.start()

    def serve(self, app: web.Application, host: str = "127.0.0.1") -> str:
        """Start ``app`` on a free port; its base URL."""

        async def start() -> int:
            runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
            await runner.setup()
            site = web.TCPSite(runner, host, 0, backlog=512)
            await site.start()
            self._runners.append(runner)
            return int(runner.addresses[-1][1])

        port = asyncio.run_coroutine_threadsafe(start(), self._loop).result(timeout=10)
        return f"http://{host}:{port}"

    def stop(self) -> None:
        async def cleanup() -> None:
            for runner in self._runners:
                await runner.cleanup()
            # Handlers still sleeping (the "slow" fault) are cancelled, not left to the GC.
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(cleanup(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        if not self._loop.is_closed():
            self._loop.close()


@dataclass
class DemoSources:
    """Running demo sources. ``bindings`` are ready for :class:`adapters.sources.Sources`."""

    root: Path
    population: Population
    bindings: BindingSet
    fhir_url: str
    police_url: str
    fhir_faults: Faults
    police_faults: Faults
    variables: dict[str, str]
    _servers: ServerThread = field(repr=False)
    _owns_root: bool = field(default=False, repr=False)
    webhook_receiver: DemoWebhookReceiver = field(default_factory=DemoWebhookReceiver)
    """The council children's services system's webhook (register it with
    :func:`demo.notify.register_demo_webhook`)."""

    def stop(self) -> None:
        self._servers.stop()
        if self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> DemoSources:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def write_council_databases(pop: Population, directory: Path) -> None:
    """One SQLite file per council system (``<system>.db``), rewritten from scratch."""
    directory.mkdir(parents=True, exist_ok=True)
    for system in SYSTEMS:
        path = directory / f"{system}.db"
        path.unlink(missing_ok=True)
        engine = create_engine(f"sqlite:///{path}")
        try:
            write_system(engine, system, pop)
        finally:
            engine.dispose()


def write_document_store(pop: Population, directory: Path) -> FileDocumentStore:
    """The proof documents of the population, indexed by person id and NHS number."""
    store = FileDocumentStore(directory)
    people = {p.person_id: p for p in pop.people}
    for doc in pop.documents:
        person = people[doc.person_id]
        store.put(
            [SubjectId("person_id", person.person_id), SubjectId("nhs_number", person.nhs_number)],
            doc.content,
            type=doc.type,
            issuer=doc.issuer,
            verified_by=doc.verified_by,
            verified_at=doc.verified_at.isoformat(),
            verification_method=doc.method,
            media_type=doc.media_type,
        )
    return store


def start_demo_sources(
    root: Path | None = None,
    *,
    seed: int = DEFAULT_SEED,
    residents: int = DEFAULT_RESIDENTS,
    host: str = "127.0.0.1",
    bindings_file: Path = DEMO_BINDINGS_FILE,
) -> DemoSources:
    """Generate the population, write the council systems, serve the HTTP sources, bind.

    ``root`` defaults to a temporary directory that ``stop()`` removes.
    """
    owns_root = root is None
    base = Path(tempfile.mkdtemp(prefix="broker-demo-")) if root is None else root
    pop = generate(seed, residents)
    write_council_databases(pop, base / "council")
    documents_dir = base / "documents"
    shutil.rmtree(documents_dir, ignore_errors=True)
    write_document_store(pop, documents_dir)
    fhir_faults, police_faults = Faults(), Faults()
    servers = ServerThread()
    try:
        fhir_url = servers.serve(build_fhir_app(pop, fhir_faults), host) + "/FHIR/R4"
        police_url = servers.serve(build_police_app(pop, police_faults), host)
        receiver = DemoWebhookReceiver()
        receiver.url = servers.serve(receiver.app(), host) + WEBHOOK_PATH
        variables = {
            "council_dir": str(base / "council"),
            "documents_dir": str(documents_dir),
            "r9z_fhir_url": fhir_url,
            "wcp_police_url": police_url,
        }
        bindings = load_bindings(bindings_file, variables=variables)
    except BaseException:
        servers.stop()
        raise
    return DemoSources(
        root=base,
        population=pop,
        bindings=bindings,
        fhir_url=fhir_url,
        police_url=police_url,
        fhir_faults=fhir_faults,
        police_faults=police_faults,
        variables=variables,
        _servers=servers,
        _owns_root=owns_root,
        webhook_receiver=receiver,
    )
