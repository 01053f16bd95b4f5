"""What one delivery cycle costs the database, and when cycles run: rows queued during the
coalescing window after a wake go in one cycle, a full batch is followed by the next at once, and
a cycle reads the webhooks of all its parties in one query and writes the outbox twice."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from sqlalchemy import Engine, event

from broker.notify.delivery import DeliveryPolicy, DeliveryWorker
from broker.notify.outbox import OutboxRow, OutboxStore
from broker.notify.sealing import SubjectSealer
from broker.notify.service import delivery_policy
from broker.notify.webhooks import WebhookRegistry
from broker.settings import Settings
from demo.parties import COUNCIL, HOSPITAL
from demo.sources.webhook_receiver import DemoWebhookReceiver
from tests.notify.conftest import Clock, enqueue, register, until
from tests.support import LOOPBACK_GUARD


class CountingStore(OutboxStore):
    """The outbox, noting how many rows each claim took."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.claimed: list[int] = []

    def claim_due(self, now_ms: int, *, limit: int, lease_ms: int) -> list[OutboxRow]:
        rows = super().claim_due(now_ms, limit=limit, lease_ms=lease_ms)
        self.claimed.append(len(rows))
        return rows


class Window:
    """The worker's sleep: notes each coalescing window and holds it until released."""

    def __init__(self) -> None:
        self.windows: list[float] = []
        self.released: asyncio.Event | None = None

    async def __call__(self, seconds: float) -> None:
        self.windows.append(seconds)
        if self.released is None:
            self.released = asyncio.Event()
        await self.released.wait()

    def release(self) -> None:
        if self.released is None:
            self.released = asyncio.Event()
        self.released.set()


def _worker(
    engine: Engine,
    store: OutboxStore,
    sealer: SubjectSealer,
    clock: Clock,
    window: Window,
    **policy: Any,
) -> DeliveryWorker:
    return DeliveryWorker(
        store,
        WebhookRegistry(engine, LOOPBACK_GUARD),
        DeliveryPolicy(poll_seconds=30.0, **policy),  # only a wake makes it look again soon
        sealer=sealer,
        clock=clock,
        sleep=window,
    )


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_rows_queued_during_the_coalescing_window_go_in_one_cycle(
    engine: Engine, sealer: SubjectSealer, receiver: DemoWebhookReceiver
) -> None:
    clock = Clock(time.time())
    register(engine, receiver)
    store, window = CountingStore(engine), Window()
    worker = _worker(engine, store, sealer, clock, window, coalesce_seconds=0.25)

    async def scenario() -> None:
        task = asyncio.create_task(worker.run_forever())
        await until(lambda: store.claimed == [0])  # started, found nothing, idle
        enqueue(engine, clock, sealer)
        worker.wake()
        await until(lambda: window.windows == [0.25])  # the worker waits in the window
        for _ in range(2):  # two more exchanges commit and wake it meanwhile
            enqueue(engine, clock, sealer)
            worker.wake()
        window.release()
        await until(lambda: len(receiver.snapshot()) == 3)
        await _stop(task)

    asyncio.run(scenario())
    # One cycle for the three, and the wakes during the window did not cause another.
    assert store.claimed == [0, 3]
    assert window.windows == [0.25]


def test_without_a_window_a_wake_claims_at_once(
    engine: Engine, sealer: SubjectSealer, receiver: DemoWebhookReceiver
) -> None:
    clock = Clock(time.time())
    register(engine, receiver)
    store, window = CountingStore(engine), Window()
    worker = _worker(engine, store, sealer, clock, window, coalesce_seconds=0.0)

    async def scenario() -> None:
        task = asyncio.create_task(worker.run_forever())
        await until(lambda: store.claimed == [0])
        enqueue(engine, clock, sealer)
        worker.wake()
        await until(lambda: len(receiver.snapshot()) == 1)
        await _stop(task)

    asyncio.run(scenario())
    assert store.claimed == [0, 1]
    assert window.windows == []


def test_a_full_batch_is_followed_by_the_next_cycle_at_once(
    engine: Engine, sealer: SubjectSealer, receiver: DemoWebhookReceiver
) -> None:
    clock = Clock(time.time())
    register(engine, receiver)
    for _ in range(5):
        enqueue(engine, clock, sealer)
    store, window = CountingStore(engine), Window()
    worker = _worker(engine, store, sealer, clock, window, batch=2, coalesce_seconds=0.25)

    async def scenario() -> None:
        task = asyncio.create_task(worker.run_forever())
        # The poll interval is 30 s and nothing wakes the worker: only going on at once after a
        # full batch delivers all five within the wait.
        await until(lambda: len(receiver.snapshot()) == 5)
        await _stop(task)

    asyncio.run(scenario())
    assert store.claimed == [2, 2, 1]
    assert window.windows == []


def test_a_cycle_reads_all_its_webhooks_in_one_query_and_writes_twice(
    engine: Engine, clock: Clock, sealer: SubjectSealer, receiver: DemoWebhookReceiver
) -> None:
    clock.now = time.time()
    register(engine, receiver)
    WebhookRegistry(engine, LOOPBACK_GUARD).add(
        HOSPITAL, receiver.url, actor="test", secret=receiver.secret
    )
    for party in (COUNCIL, HOSPITAL, COUNCIL, HOSPITAL):
        enqueue(engine, clock, sealer, party=party)
    worker = _worker(engine, OutboxStore(engine), sealer, clock, Window())
    statements: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", note)
    try:
        assert asyncio.run(worker.run_once()) == 4
    finally:
        event.remove(engine, "before_cursor_execute", note)
    assert len(receiver.snapshot()) == 4
    assert sum("FROM webhooks" in s for s in statements) == 1
    # The claim and the record of the outcomes (all delivered: one statement for the four).
    assert sum(s.startswith("UPDATE outbox") for s in statements) == 2


@pytest.mark.parametrize(
    ("setting", "seconds"),
    [
        pytest.param({}, DeliveryPolicy.coalesce_seconds, id="default-as-the-policy"),
        pytest.param({"webhook_coalesce_ms": 20}, 0.02, id="milliseconds-to-seconds"),
        pytest.param({"webhook_coalesce_ms": 0}, 0.0, id="off"),
    ],
)
def test_the_window_is_a_setting(setting: dict[str, float], seconds: float) -> None:
    assert delivery_policy(Settings(**setting)).coalesce_seconds == pytest.approx(seconds)
