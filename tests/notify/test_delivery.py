"""Delivery over real loopback HTTP to the demo receiver: signatures, retries with backoff,
giving up, waiting for a registration, and resuming after a restart (state only in the DB)."""

from __future__ import annotations

import asyncio
import json
import random
import time

import pytest
from sqlalchemy import Engine

from broker.notify.delivery import DeliveryPolicy, DeliveryWorker
from broker.notify.outbox import OutboxStore
from broker.notify.sealing import SubjectSealer
from broker.notify.signing import new_secret
from broker.notify.webhooks import WebhookRegistry
from demo.notify import register_demo_webhook
from demo.parties import COUNCIL
from demo.sources.webhook_receiver import DemoWebhookReceiver
from tests.notify.conftest import CHILD, Clock, enqueue, notice, outbox_row, register
from tests.support import LOOPBACK_GUARD

POLICY = DeliveryPolicy(max_attempts=4, backoff_base_seconds=10.0, backoff_max_seconds=100.0)


def _worker(
    engine: Engine, clock: Clock, sealer: SubjectSealer, policy: DeliveryPolicy = POLICY
) -> DeliveryWorker:
    return DeliveryWorker(
        OutboxStore(engine),
        WebhookRegistry(engine, LOOPBACK_GUARD),
        policy,
        sealer=sealer,
        clock=clock,
        rng=random.Random(7),
    )


def test_a_notification_reaches_the_council_signed_and_with_its_own_identifier(
    engine: Engine, clock: Clock, sealer: SubjectSealer, receiver: DemoWebhookReceiver
) -> None:
    clock.now = time.time()  # the receiver checks timestamps against its own clock
    register(engine, receiver)
    row_id = enqueue(engine, clock, sealer)
    assert asyncio.run(_worker(engine, clock, sealer).run_once()) == 1
    [event] = receiver.snapshot()
    assert event["id"] == row_id
    assert event["type"] == "exchange.record-shared"
    data = event["data"]
    assert data["subject"] == {"type": "nhs_number", "value": CHILD.value}
    # Next to the identifier: the council's own reference, never the broker's pseudonym.
    pseudonym = notice().subject_pseudonym
    assert pseudonym is not None
    assert "subject_pseudonym" not in data
    assert pseudonym.value not in json.dumps(event)
    assert data["subject_reference"] == sealer.reference(pseudonym, COUNCIL)
    assert data["dataset"] == "ccc.child-protection"
    assert data["requesting_party"] == "R9Z"
    assert "emergency department" in data["summary"]
    row = outbox_row(engine, row_id)
    assert (row.status, row.attempts, row.subject_sealed) == ("delivered", 1, None)
    assert receiver.rejected == 0


def test_500s_are_retried_with_growing_backoff_until_delivered(
    engine: Engine, clock: Clock, sealer: SubjectSealer, receiver: DemoWebhookReceiver
) -> None:
    clock.now = time.time()
    register(engine, receiver)
    row_id = enqueue(engine, clock, sealer)
    receiver.answer_with = [500, 503]
    worker = _worker(engine, clock, sealer)
    waits = []
    for _ in range(2):
        before = clock.now
        assert asyncio.run(worker.run_once()) == 1
        row = outbox_row(engine, row_id)
        assert row.status == "pending"
        assert row.last_error is not None
        waits.append(row.next_attempt_ms / 1000 - before)
        assert asyncio.run(worker.run_once()) == 0  # not due yet
        clock.now = row.next_attempt_ms / 1000
    assert 5 <= waits[0] <= 10
    assert 10 <= waits[1] <= 20
    assert asyncio.run(worker.run_once()) == 1
    row = outbox_row(engine, row_id)
    assert (row.status, row.attempts) == ("delivered", 3)
    assert len(receiver.snapshot()) == 1
    assert receiver.attempts == 3


def test_it_gives_up_after_max_attempts_and_erases_the_identifier(
    engine: Engine, clock: Clock, sealer: SubjectSealer, receiver: DemoWebhookReceiver
) -> None:
    clock.now = time.time()
    register(engine, receiver)
    row_id = enqueue(engine, clock, sealer)
    receiver.answer_with = [500] * 10
    worker = _worker(engine, clock, sealer)
    for _ in range(POLICY.max_attempts):
        assert asyncio.run(worker.run_once()) == 1
        clock.now += POLICY.backoff_max_seconds
    row = outbox_row(engine, row_id)
    assert (row.status, row.attempts, row.last_error) == ("failed", 4, "HTTP 500 from the webhook")
    assert row.subject_sealed is None
    assert asyncio.run(worker.run_once()) == 0
    assert receiver.attempts == 4


def test_a_bad_signature_is_refused_by_the_receiver_and_retried(
    engine: Engine, clock: Clock, sealer: SubjectSealer, receiver: DemoWebhookReceiver
) -> None:
    clock.now = time.time()
    register_demo_webhook(
        WebhookRegistry(engine, LOOPBACK_GUARD), receiver.url, new_secret()
    )  # wrong secret
    row_id = enqueue(engine, clock, sealer)
    asyncio.run(_worker(engine, clock, sealer).run_once())
    assert receiver.rejected == 1
    assert receiver.snapshot() == []
    assert outbox_row(engine, row_id).last_error == "HTTP 401 from the webhook"


def test_without_a_webhook_the_notification_waits_for_one(
    engine: Engine, clock: Clock, sealer: SubjectSealer, receiver: DemoWebhookReceiver
) -> None:
    clock.now = time.time()
    row_id = enqueue(engine, clock, sealer)
    worker = _worker(engine, clock, sealer)
    asyncio.run(worker.run_once())
    row = outbox_row(engine, row_id)
    assert row.status == "pending"
    assert row.last_error == f"RuntimeError: no active webhook registered for {COUNCIL}"
    register(engine, receiver)
    clock.now = row.next_attempt_ms / 1000
    asyncio.run(worker.run_once())
    assert outbox_row(engine, row_id).status == "delivered"


def test_a_paused_webhook_is_not_posted_to(
    engine: Engine, clock: Clock, sealer: SubjectSealer, receiver: DemoWebhookReceiver
) -> None:
    clock.now = time.time()
    register(engine, receiver)
    WebhookRegistry(engine, LOOPBACK_GUARD).set_active(COUNCIL, False, actor="test")
    enqueue(engine, clock, sealer)
    asyncio.run(_worker(engine, clock, sealer).run_once())
    assert receiver.attempts == 0


def test_an_unreachable_webhook_is_retried(
    engine: Engine, clock: Clock, sealer: SubjectSealer
) -> None:
    WebhookRegistry(engine, LOOPBACK_GUARD).add(
        COUNCIL, "http://127.0.0.1:9/nothing-listens", actor="test"
    )
    row_id = enqueue(engine, clock, sealer)
    asyncio.run(_worker(engine, clock, sealer).run_once())
    row = outbox_row(engine, row_id)
    assert row.status == "pending"
    assert row.attempts == 1
    assert row.last_error is not None
    assert row.last_error.startswith("ClientConnectorError: Cannot connect to host 127.0.0.1:9")


def test_a_restart_resumes_from_the_database(
    engine: Engine,
    clock: Clock,
    sealer: SubjectSealer,
    receiver: DemoWebhookReceiver,
    tmp_path: object,
) -> None:
    clock.now = time.time()
    register(engine, receiver)
    row_id = enqueue(engine, clock, sealer)
    # A worker claims the row and the process dies before posting it.
    claimed = OutboxStore(engine).claim_due(int(clock() * 1000), limit=5, lease_ms=60_000)
    assert [r.id for r in claimed] == [row_id]
    engine.dispose()
    # The new process: a new engine and worker on the same database, after the lease.
    clock.now += 61
    restarted = _worker(engine, clock, sealer)
    assert asyncio.run(restarted.run_once()) == 1
    assert [e["id"] for e in receiver.snapshot()] == [row_id]


def test_run_forever_delivers_when_woken_and_stops_when_cancelled(
    engine: Engine, sealer: SubjectSealer, receiver: DemoWebhookReceiver
) -> None:
    clock = Clock(time.time())
    register(engine, receiver)
    policy = DeliveryPolicy(poll_seconds=30.0)  # only a wake can make it look again soon

    async def scenario() -> None:
        worker = _worker(engine, clock, sealer, policy)
        task = asyncio.create_task(worker.run_forever())
        await asyncio.sleep(0.05)  # let it start and go idle
        enqueue(engine, clock, sealer)
        worker.wake()
        for _ in range(500):
            if receiver.snapshot():
                break
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert len(receiver.snapshot()) == 1


def test_registering_the_demo_webhook_again_replaces_it(
    engine: Engine, receiver: DemoWebhookReceiver
) -> None:
    registry = WebhookRegistry(engine, LOOPBACK_GUARD)
    register_demo_webhook(registry, "http://127.0.0.1:1/old", new_secret())
    register_demo_webhook(registry, receiver.url, receiver.secret)
    hook = registry.get(COUNCIL)
    assert hook is not None
    assert (hook.url, hook.secret, hook.active) == (receiver.url, receiver.secret, True)


def test_failed_notifications_are_a_readiness_note(
    engine: Engine, clock: Clock, sealer: SubjectSealer
) -> None:
    from broker.notify.service import Notifications

    worker = _worker(engine, clock, sealer, DeliveryPolicy(max_attempts=1))
    notifications = Notifications(worker.store, worker.registry, worker, sealer, clock)
    assert notifications.note() is None
    enqueue(engine, clock, sealer)
    asyncio.run(worker.run_once())  # no webhook, one attempt allowed: failed
    assert notifications.note() == (
        "1 provider notification(s) failed: broker webhooks outbox --status failed"
    )


@pytest.mark.parametrize(
    ("retry_after", "least", "most"),
    [
        pytest.param("500", 500, 500, id="honoured"),
        pytest.param("999999", 3600, 3600, id="capped"),
        pytest.param("Wed, 21 Oct 2015 07:28:00 GMT", 5, 10, id="date-ignored"),
    ],
)
def test_retry_after_is_a_floor_on_the_backoff(
    engine: Engine,
    clock: Clock,
    sealer: SubjectSealer,
    receiver: DemoWebhookReceiver,
    retry_after: str,
    least: float,
    most: float,
) -> None:
    clock.now = time.time()
    register(engine, receiver)
    row_id = enqueue(engine, clock, sealer)
    receiver.answer_with, receiver.retry_after = [503], retry_after
    policy = DeliveryPolicy(backoff_base_seconds=10.0, backoff_max_seconds=3600.0)
    asyncio.run(_worker(engine, clock, sealer, policy).run_once())
    wait = outbox_row(engine, row_id).next_attempt_ms / 1000 - clock.now
    assert least - 0.001 <= wait <= most + 0.001
