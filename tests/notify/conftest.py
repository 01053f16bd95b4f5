"""Fixtures: a migrated database with the demo's council and hospital, a webhook receiver served
on loopback (the demo's), a settable clock, and a subject sealer with a test key; helpers to queue
a notification, read its row, register the receiver, and wait for something to happen."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine

from broker.auth.registry import Registry
from broker.core.identifiers import SubjectId
from broker.core.pseudonym import PseudonymKey, PseudonymKeyring, pseudonymise
from broker.db.engine import build_engine
from broker.db.migrate import upgrade
from broker.notify.notice import ProviderNotice
from broker.notify.outbox import OutboxRow, OutboxStore, enqueue_notification
from broker.notify.sealing import SubjectSealer
from broker.notify.webhooks import WebhookRegistry
from demo.notify import register_demo_webhook
from demo.parties import COUNCIL, HOSPITAL
from demo.sources.runtime import ServerThread
from demo.sources.webhook_receiver import PATH, DemoWebhookReceiver
from tests.support import LOOPBACK_GUARD

KEY = PseudonymKey("v1", b"notify-tests-pseudonym-key-32-b!")
CHILD = SubjectId("nhs_number", "9990000018")
T0 = 1_795_900_000.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def notice(exchange_id: str = "0f9d4c1e-0000-4000-8000-000000000001") -> ProviderNotice:
    return ProviderNotice(
        exchange_id=exchange_id,
        provider_party=COUNCIL,
        occurred_at_ms=int(T0 * 1000),
        agreement_id="ISA-SAFEGUARDING-CHILDREN",
        flow_id="cp-status-to-health-and-police",
        purpose="child-protection-check",
        dataset="ccc.child-protection",
        requesting_party=HOSPITAL,
        requesting_client="r9z-ed-safeguarding",
        requester_role="safeguarding-nurse",
        released_fields=("child_protection_plan.status",),
        subject_pseudonym=pseudonymise(KEY, CHILD.type, CHILD.value),
        summary="The child attended the emergency department at Calderbridge Hospitals: "
        "Emergency Department safeguarding checked their child protection record",
    )


def enqueue(
    engine: Engine, clock: Clock, sealer: SubjectSealer | None = None, *, party: str = COUNCIL
) -> str:
    """Queue a notice to ``party``, due now; with a sealer, the child's identifier goes too."""
    with engine.begin() as conn:
        return enqueue_notification(
            conn,
            dataclasses.replace(notice(), provider_party=party),
            now_ms=int(clock() * 1000),
            subject=CHILD if sealer else None,
            sealer=sealer,
        )


def outbox_row(engine: Engine, row_id: str) -> OutboxRow:
    row = OutboxStore(engine).get(row_id)
    assert row is not None
    return row


def register(engine: Engine, receiver: DemoWebhookReceiver) -> None:
    register_demo_webhook(WebhookRegistry(engine, LOOPBACK_GUARD), receiver.url, receiver.secret)


async def until(check: Callable[[], bool]) -> None:
    """Return once ``check()`` holds; fail the test if it has not within about 10 s."""
    for _ in range(1000):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the awaited state was never reached")


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """SQLite, and PostgreSQL too when BROKER_TEST_DATABASE_URL is set (root conftest)."""
    eng = build_engine(database_url, pool_size=4)
    upgrade(eng)
    registry = Registry(eng)
    registry.add_party(COUNCIL, "Calderbridge City Council", "council", None, actor="test")
    registry.add_party(HOSPITAL, "Calderbridge Hospitals", "nhs", "R9Z", actor="test")
    yield eng
    eng.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sealer() -> SubjectSealer:
    return SubjectSealer(PseudonymKeyring((KEY,)))


@pytest.fixture
def servers() -> Iterator[ServerThread]:
    threads = ServerThread()
    yield threads
    threads.stop()


@pytest.fixture
def receiver(servers: ServerThread) -> DemoWebhookReceiver:
    r = DemoWebhookReceiver()
    r.url = servers.serve(r.app()) + PATH
    return r
