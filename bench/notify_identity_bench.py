"""What provider notifications and ID token checks add to one exchange.

    PYTHONPATH=. .venv/bin/python bench/notify_identity_bench.py          # short (~40 s)
    PYTHONPATH=. .venv/bin/python bench/notify_identity_bench.py --full   # more samples
    PYTHONPATH=. .venv/bin/python bench/notify_identity_bench.py --only delivery --coalesce-ms 0

1. A durable audit append (SQLite WAL, synchronous=FULL, one thread) without and with the outbox
   row written in the same transaction (subject sealed): the added cost on the exchange path.
2. ``verify_id_token`` with the provider's keys cached (ES256 and RS256).
3. Delivery, to the demo receiver served by another process on loopback (so this process's CPU
   time is the broker's side only: worker, signing, sealing, database):
   a. a backlog of N queued notifications drained by ``run_forever``: deliveries/s, CPU per
      delivery, and how many TCP connections the receiver saw;
   b. the exchange path at a steady rate (a thread appending audit entries with their outbox row
      and waking the worker, as the pipeline does), without and with the worker running: the
      append latency the exchange sees, and the worker's CPU per delivery (the process's CPU
      time less the exchange thread's).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from bench.stats import summary
from broker.audit.entry import AgreementRef, AuditEntry
from broker.audit.log import AuditLog, LogSigner
from broker.auth.registry import Registry
from broker.core.identifiers import SubjectId
from broker.core.pseudonym import PseudonymKey, PseudonymKeyring, pseudonymise
from broker.db.engine import build_engine
from broker.db.migrate import upgrade
from broker.identity.jwks import JwksCache
from broker.identity.service import IdentityProviders
from broker.identity.store import IdentityProviderStore
from broker.notify.delivery import DeliveryPolicy, DeliveryWorker
from broker.notify.notice import ProviderNotice
from broker.notify.outbox import OutboxStore, enqueue_notification
from broker.notify.sealing import SubjectSealer
from broker.notify.service import Notifications
from broker.notify.signing import new_secret
from broker.notify.webhooks import WebhookRegistry
from broker.observability import configure_logging
from demo.notify import register_demo_webhook
from demo.parties import COUNCIL, HOSPITAL
from demo.sources.runtime import ServerThread
from demo.sources.webhook_receiver import PATH, DemoWebhookReceiver
from tests.support import LOOPBACK_GUARD

KEY = PseudonymKey("v1", b"bench-pseudonym-key-of-32-bytes!")
CHILD = SubjectId("nhs_number", "9990000018")
ISSUER = "https://login.r9z.nhs.example"


def entry(i: int) -> AuditEntry:
    return AuditEntry(
        decision="allow",
        client_id="r9z-ed-safeguarding",
        party_id=HOSPITAL,
        user_id="hospital-ed-nurse-17",
        user_role="safeguarding-nurse",
        agreement=AgreementRef("ISA-SAFEGUARDING-CHILDREN", "3", "sha256:" + "ab" * 32),
        purpose="child-protection-check",
        dataset="ccc.child-protection",
        subject=pseudonymise(KEY, CHILD.type, CHILD.value),
        requested_fields=("child_protection_plan.status",),
        released_fields=("child_protection_plan.status",),
        case_reference=f"ED-2026-11-{i:04d}",
        time_ms=int(time.time() * 1000),
    )


def notice(exchange_id: str) -> ProviderNotice:
    return ProviderNotice(
        exchange_id=exchange_id,
        provider_party=COUNCIL,
        occurred_at_ms=int(time.time() * 1000),
        agreement_id="ISA-SAFEGUARDING-CHILDREN",
        purpose="child-protection-check",
        dataset="ccc.child-protection",
        requesting_party=HOSPITAL,
        requesting_client="r9z-ed-safeguarding",
        summary="bench",
        subject_pseudonym=pseudonymise(KEY, CHILD.type, CHILD.value),
    )


def _serve_receiver(secret: str, pipe: Connection) -> None:
    """The receiver's process: serve, send the URL, answer ``stats`` until ``stop``."""
    receiver = DemoWebhookReceiver(secret=secret)
    peers: set[Any] = set()

    @web.middleware
    async def count_connections(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.transport is not None:
            peers.add(request.transport.get_extra_info("peername"))
        response: web.StreamResponse = await handler(request)
        return response

    app = receiver.app()
    app.middlewares.append(count_connections)
    servers = ServerThread()
    try:
        pipe.send(servers.serve(app) + PATH)
        while (command := pipe.recv()) != "stop":
            assert command == "stats"
            pipe.send((len(receiver.snapshot()), receiver.attempts, receiver.rejected, len(peers)))
    finally:
        servers.stop()


@dataclass(frozen=True)
class ReceiverStats:
    received: int
    attempts: int
    rejected: int
    connections: int


class ReceiverProcess:
    """The demo receiver in a process of its own (its CPU is not the broker's)."""

    def __init__(self) -> None:
        self.secret = new_secret()
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(
            target=_serve_receiver, args=(self.secret, child), daemon=True
        )
        self._process.start()
        self.url: str = self._pipe.recv()

    def stats(self) -> ReceiverStats:
        self._pipe.send("stats")
        return ReceiverStats(*self._pipe.recv())

    def __enter__(self) -> ReceiverProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._pipe.send("stop")
        self._process.join(timeout=10)


def queue(engine: Any, notifications: Notifications, n: int) -> None:
    """``n`` notifications queued at once (subject sealed, as the demo flow does)."""
    with engine.begin() as conn:
        for i in range(n):
            enqueue_notification(
                conn,
                notice(f"bench-{time.time_ns()}-{i}"),
                now_ms=int(time.time() * 1000),
                subject=CHILD,
                sealer=notifications.sealer,
            )


async def _stop(task: asyncio.Task[None]) -> None:
    # Cancelled again until it ends: Python 3.11's wait_for (the worker before this change)
    # can swallow a cancellation that arrives together with a wake.
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=0.1)


async def _until_delivered(store: OutboxStore, target: int) -> None:
    while True:
        if (await asyncio.to_thread(store.counts))["delivered"] >= target:
            return
        await asyncio.sleep(0.05)


def drain(
    engine: Any,
    notifications: Notifications,
    worker: DeliveryWorker,
    receiver: ReceiverProcess,
    n: int,
) -> None:
    """3a: a backlog of ``n`` drained by ``run_forever``."""
    store = notifications.outbox
    queue(engine, notifications, n)
    counts = store.counts()
    n = counts["pending"]  # with any left by part 1
    target = counts["delivered"] + n
    before = receiver.stats()

    async def run() -> None:
        task = asyncio.create_task(worker.run_forever())
        await asyncio.sleep(0)
        worker.wake()
        await _until_delivered(store, target)
        await _stop(task)

    cpu, t0 = time.process_time(), time.perf_counter()
    asyncio.run(run())
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu
    after = receiver.stats()
    print(
        f"   a. backlog of {n}: {n / elapsed:6.0f} deliveries/s, "
        f"{cpu * 1000 / n:5.2f} ms CPU per delivery, "
        f"{after.connections - before.connections} new TCP connections, "
        f"{after.attempts - before.attempts} attempts, {after.rejected - before.rejected} rejected"
    )


def steady(
    log: AuditLog,
    notifications: Notifications,
    worker: DeliveryWorker,
    receiver: ReceiverProcess,
    rate: float,
    seconds: float,
    deliver: bool,
) -> None:
    """3b: exchanges at ``rate``/s for ``seconds`` from a thread of their own, the worker running
    or not. The process's CPU time less that thread's is the worker's (loop and its threads)."""
    store = notifications.outbox
    latencies: list[float] = []
    total = int(rate * seconds)
    exchange_cpu = 0.0

    def exchanges(loop: asyncio.AbstractEventLoop, done: asyncio.Event) -> None:
        nonlocal exchange_cpu
        cpu, start = time.thread_time(), time.perf_counter()
        for i in range(total):
            pause = start + i / rate - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            e = entry(i)
            t0 = time.perf_counter()
            log.append(e, extras=[notifications.writer(notice(e.exchange_id), subject=CHILD)])
            latencies.append(time.perf_counter() - t0)
            worker.wake()
        exchange_cpu = time.thread_time() - cpu
        loop.call_soon_threadsafe(done.set)

    async def run() -> tuple[float, int, float, ReceiverStats]:
        task = None
        if deliver:
            task = asyncio.create_task(worker.run_forever())
            await asyncio.sleep(0)
            worker.wake()
            counts = store.counts()
            await _until_delivered(store, counts["delivered"] + counts["pending"])
        before = receiver.stats()
        delivered = store.counts()["delivered"]
        done = asyncio.Event()
        producer = threading.Thread(target=exchanges, args=(asyncio.get_running_loop(), done))
        cpu, t0 = time.process_time(), time.perf_counter()
        producer.start()
        await done.wait()
        cpu, elapsed = time.process_time() - cpu, time.perf_counter() - t0
        producer.join()
        delivered = store.counts()["delivered"] - delivered
        if task is not None:
            await _stop(task)
        return cpu, delivered, elapsed, before

    cpu, delivered, elapsed, before = asyncio.run(run())
    after = receiver.stats()
    line = (
        f"   b. {rate:4.0f}/s {'with' if deliver else 'without'} the worker: "
        f"append {summary(latencies)}, exchange thread CPU "
        f"{exchange_cpu * 1000 / total:4.2f} ms/exchange ({total / elapsed:.0f}/s achieved)"
    )
    if deliver:
        line += (
            f"\n      worker CPU {(cpu - exchange_cpu) * 1000 / max(1, delivered):4.2f} ms/delivery"
            f" ({delivered} delivered in the window, "
            f"{after.connections - before.connections} new TCP connections)"
        )
    else:
        line += f", rest of the process {(cpu - exchange_cpu) * 1000:.0f} ms CPU"
    print(line)


def worker_for(args: argparse.Namespace, notifications: Notifications) -> DeliveryWorker:
    """A fresh worker (its own connection pool) with the policy of the command line."""
    policy = DeliveryPolicy(batch=args.batch, coalesce_seconds=args.coalesce_ms / 1000)
    return DeliveryWorker(
        notifications.outbox, notifications.webhooks, policy, sealer=notifications.sealer
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--only", choices=("append", "identity", "delivery"))
    parser.add_argument("--batch", type=int, default=DeliveryPolicy.batch)
    parser.add_argument("--coalesce-ms", type=float, default=DeliveryPolicy.coalesce_seconds * 1000)
    parser.add_argument("--rates", default="100,300", help="exchanges/s of part 3b")
    args = parser.parse_args()
    configure_logging("WARNING", json_lines=True)
    appends, checks, deliveries = (3000, 20000, 5000) if args.full else (400, 3000, 1000)
    seconds = 10.0 if args.full else 5.0
    root = Path(tempfile.mkdtemp(prefix="notify-bench-"))
    try:
        engine = build_engine(f"sqlite:///{root / 'b.db'}", pool_size=4)
        upgrade(engine)
        registry = Registry(engine)
        registry.add_party(COUNCIL, "Council", "council", None, actor="bench")
        registry.add_party(HOSPITAL, "Hospital", "nhs", "R9Z", actor="bench")
        log = AuditLog(engine, LogSigner("bench.example/audit", Ed25519PrivateKey.generate()))
        sealer = SubjectSealer(PseudonymKeyring((KEY,)))
        store, hooks = OutboxStore(engine), WebhookRegistry(engine, LOOPBACK_GUARD)
        worker = DeliveryWorker(store, hooks, sealer=sealer)  # replaced per run of part 3
        notifications = Notifications(store, hooks, worker, sealer)

        if args.only in (None, "append"):
            print("1. durable audit append (SQLite, one thread; runs interleaved)")
            plain: list[float] = []
            with_row: list[float] = []
            for i in range(appends * 2):
                e = entry(i)
                extras = (
                    [notifications.writer(notice(e.exchange_id), subject=CHILD)] if i % 2 else []
                )
                t0 = time.perf_counter()
                log.append(e, extras=extras)
                (with_row if i % 2 else plain).append(time.perf_counter() - t0)
            print(f"   without outbox row {summary(plain)}")
            print(f"   with outbox row    {summary(with_row)}")

        if args.only in (None, "identity"):
            print("2. verify_id_token (keys cached)")
            idp_store = IdentityProviderStore(engine)
            idp = IdentityProviders(idp_store, JwksCache(fetcher=None))  # type: ignore[arg-type]
            for alg, key in (
                ("ES256", ECKey.generate_key("P-256", private=True)),
                ("RS256", RSAKey.generate_key(2048, private=True)),
            ):
                jwk = dict(key.as_dict(private=False)) | {"kid": "k1"}
                for provider in idp_store.for_party(HOSPITAL):
                    idp_store.remove(HOSPITAL, actor="bench", issuer=provider.issuer)
                idp_store.add(HOSPITAL, ISSUER, actor="bench", jwks={"keys": [jwk]})
                now = int(time.time())
                claims = {"iss": ISSUER, "aud": "r9z-ed-safeguarding", "sub": "nurse", "role": "r"}
                token = jwt.encode(
                    {"alg": alg, "kid": "k1"}, claims | {"iat": now, "exp": now + 300}, key
                )
                samples = []
                for _ in range(checks):
                    t0 = time.perf_counter()
                    idp.verify_id_token(HOSPITAL, "r9z-ed-safeguarding", token, now)
                    samples.append(time.perf_counter() - t0)
                print(f"   {alg} {summary(samples)}")

        if args.only in (None, "delivery"):
            print("3. delivery to the demo receiver (in its own process, on loopback)")
            print(f"   batch {args.batch}, coalescing window {args.coalesce_ms:g} ms")
            with ReceiverProcess() as receiver:
                register_demo_webhook(hooks, receiver.url, receiver.secret)
                drain(engine, notifications, worker_for(args, notifications), receiver, deliveries)
                for rate in (float(r) for r in args.rates.split(",")):
                    for deliver in (False, True):
                        steady(
                            log,
                            notifications,
                            worker_for(args, notifications),
                            receiver,
                            rate,
                            seconds,
                            deliver,
                        )
        engine.dispose()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
