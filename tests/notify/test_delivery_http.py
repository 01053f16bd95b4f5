"""The worker's HTTP client against real servers on loopback: successive deliveries share a
kept-alive connection, an answer's body is read only up to a bound, and a timeout or a redirect is
a failed attempt (retried; a redirect is never followed)."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from sqlalchemy import Engine

from broker.notify.delivery import ANSWER_BODY_MAX_BYTES, DeliveryPolicy, DeliveryWorker
from broker.notify.outbox import OutboxStore
from broker.notify.sealing import SubjectSealer
from broker.notify.webhooks import WebhookRegistry
from demo.parties import COUNCIL
from demo.sources.runtime import ServerThread
from demo.sources.webhook_receiver import DemoWebhookReceiver
from tests.notify.conftest import Clock, enqueue, outbox_row, register, until
from tests.support import LOOPBACK_GUARD

# Only a wake makes the worker look again; no coalescing window to wait through.
PROMPT = DeliveryPolicy(poll_seconds=30.0, coalesce_seconds=0.0)


def _worker(
    engine: Engine, clock: Clock, sealer: SubjectSealer, policy: DeliveryPolicy = PROMPT
) -> DeliveryWorker:
    return DeliveryWorker(
        OutboxStore(engine),
        WebhookRegistry(engine, LOOPBACK_GUARD),
        policy,
        sealer=sealer,
        clock=clock,
        rng=random.Random(7),
    )


def _deliver_one_by_one(
    engine: Engine, clock: Clock, sealer: SubjectSealer, worker: DeliveryWorker, n: int
) -> list[str]:
    """Queue ``n`` notifications one after the other, each delivered (or attempted) by one
    ``run_forever`` before the next is queued; their ids."""

    async def scenario() -> list[str]:
        task = asyncio.create_task(worker.run_forever())
        ids: list[str] = []
        for _ in range(n):
            ids.append(enqueue(engine, clock, sealer))
            worker.wake()
            await until(lambda: outbox_row(engine, ids[-1]).attempts == 1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return ids

    return asyncio.run(scenario())


def test_successive_deliveries_share_one_kept_alive_connection(
    engine: Engine, sealer: SubjectSealer, receiver: DemoWebhookReceiver
) -> None:
    clock = Clock(time.time())
    register(engine, receiver)
    receiver.answer_with = [503]  # a refused delivery leaves its connection usable too
    ids = _deliver_one_by_one(engine, clock, sealer, _worker(engine, clock, sealer), 3)
    assert [outbox_row(engine, i).status for i in ids] == ["pending", "delivered", "delivered"]
    assert receiver.attempts == 3
    assert receiver.connections == 1


@dataclass
class Answering:
    """A webhook that accepts every delivery with a 200 and a body of ``body_bytes`` (None: a
    body that never ends), sent a moment after the status line and headers, and notes the
    connections deliveries came on."""

    body_bytes: int | None
    attempts: int = 0
    peers: set[object] = field(default_factory=set)

    def app(self) -> web.Application:
        async def answer(request: web.Request) -> web.StreamResponse:
            await request.read()
            self.attempts += 1
            if request.transport is not None:
                self.peers.add(request.transport.get_extra_info("peername"))
            response = web.StreamResponse(status=200)
            if self.body_bytes is not None:
                response.content_length = self.body_bytes
            await response.prepare(request)
            # Late, so that a client releasing the answer without reading it finds the body
            # not yet arrived and cannot reuse the connection.
            await asyncio.sleep(0.05)
            try:
                if self.body_bytes is not None:
                    await response.write(b"x" * self.body_bytes)
                    await response.write_eof()
                    return response
                while True:
                    await response.write(b"x" * 65536)
            except ConnectionError:  # the broker stopped reading and closed the connection
                return response

        app = web.Application()
        app.router.add_post("/hook", answer)
        return app


@pytest.mark.parametrize(
    ("body_bytes", "connections"),
    [
        pytest.param(None, 2, id="endless-body-left-unread-connection-closed"),
        pytest.param(ANSWER_BODY_MAX_BYTES * 4, 2, id="long-body-left-unread-connection-closed"),
        pytest.param(ANSWER_BODY_MAX_BYTES // 2, 1, id="short-body-read-connection-reused"),
        pytest.param(0, 1, id="empty-body-connection-reused"),
    ],
)
def test_an_answer_body_is_read_only_up_to_a_bound(
    engine: Engine,
    clock: Clock,
    sealer: SubjectSealer,
    servers: ServerThread,
    body_bytes: int | None,
    connections: int,
) -> None:
    webhook = Answering(body_bytes)
    WebhookRegistry(engine, LOOPBACK_GUARD).add(
        COUNCIL, servers.serve(webhook.app()) + "/hook", actor="test"
    )
    ids = _deliver_one_by_one(engine, clock, sealer, _worker(engine, clock, sealer), 2)
    # A 2xx is a delivery whatever follows it: reading the whole of an endless body would have
    # ended in a timeout and a retry instead.
    assert [outbox_row(engine, i).status for i in ids] == ["delivered", "delivered"]
    assert webhook.attempts == 2
    assert len(webhook.peers) == connections


def test_a_webhook_that_does_not_answer_in_time_is_retried(
    engine: Engine, clock: Clock, sealer: SubjectSealer, servers: ServerThread
) -> None:
    async def silent(request: web.Request) -> web.Response:
        await asyncio.sleep(3600)  # cancelled when the test's servers stop
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", silent)
    WebhookRegistry(engine, LOOPBACK_GUARD).add(COUNCIL, servers.serve(app) + "/hook", actor="test")
    row_id = enqueue(engine, clock, sealer)
    policy = DeliveryPolicy(timeout_seconds=0.2)
    assert asyncio.run(_worker(engine, clock, sealer, policy).run_once()) == 1
    row = outbox_row(engine, row_id)
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "TimeoutError")
    assert row.next_attempt_ms > clock() * 1000


def test_a_redirect_is_a_failed_attempt_and_is_not_followed(
    engine: Engine, clock: Clock, sealer: SubjectSealer, servers: ServerThread
) -> None:
    hits: list[str] = []

    async def moved(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(status=307, headers={"Location": "/elsewhere"})

    async def elsewhere(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", moved)
    app.router.add_post("/elsewhere", elsewhere)
    WebhookRegistry(engine, LOOPBACK_GUARD).add(COUNCIL, servers.serve(app) + "/hook", actor="test")
    row_id = enqueue(engine, clock, sealer)
    asyncio.run(_worker(engine, clock, sealer).run_once())
    row = outbox_row(engine, row_id)
    assert (row.status, row.last_error) == ("pending", "HTTP 307 from the webhook")
    assert hits == ["/hook"]
