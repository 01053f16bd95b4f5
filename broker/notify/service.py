"""Provider notifications as one service: what the gateway and the exchange pipeline hold.

The pipeline, for an allow whose obligations name a provider to notify::

    write = services.notifications.writer(notice, subject=subject)  # subject: see outbox.py
    appended = services.audit.append(entry, extras=[write])         # one transaction
    services.notifications.wake()                                    # deliver now, not next poll

The app lifespan starts :meth:`Notifications.deliver_forever` as a task.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine

from broker.core.identifiers import SubjectId
from broker.notify.delivery import DeliveryPolicy, DeliveryWorker
from broker.notify.notice import ProviderNotice
from broker.notify.outbox import OutboxStore, enqueue_notification
from broker.notify.sealing import SubjectSealer, load_sealer
from broker.notify.webhooks import WebhookRegistry
from broker.outbound import guard_for
from broker.settings import Settings


@dataclass
class Notifications:
    outbox: OutboxStore
    webhooks: WebhookRegistry
    worker: DeliveryWorker
    sealer: SubjectSealer | None
    clock: Callable[[], float] = time.time

    def writer(
        self, notice: ProviderNotice, *, subject: SubjectId | None = None
    ) -> Callable[[Connection], None]:
        """An ``extras`` callable for ``AuditLog.append`` that queues ``notice``."""

        def write(conn: Connection) -> None:
            enqueue_notification(
                conn,
                notice,
                now_ms=int(self.clock() * 1000),
                subject=subject,
                sealer=self.sealer,
            )

        return write

    def wake(self) -> None:
        self.worker.wake()

    def note(self) -> str | None:
        """For ``/readyz`` notes: failed notifications an operator should look at."""
        try:
            failed = self.outbox.counts()["failed"]
        except Exception:  # the database check reports an unreachable database
            return None
        if not failed:
            return None
        return f"{failed} provider notification(s) failed: broker webhooks outbox --status failed"

    async def deliver_forever(self, may_run: Callable[[], bool] | None = None) -> None:
        """Deliver until cancelled; only while ``may_run()`` (the lease) when given."""
        await self.worker.run_forever(may_run)


def delivery_policy(settings: Settings) -> DeliveryPolicy:
    return DeliveryPolicy(
        max_attempts=settings.webhook_max_attempts,
        backoff_base_seconds=settings.webhook_backoff_base_seconds,
        backoff_max_seconds=settings.webhook_backoff_max_seconds,
        timeout_seconds=settings.webhook_timeout_seconds,
        poll_seconds=settings.webhook_poll_seconds,
        coalesce_seconds=settings.webhook_coalesce_ms / 1000,
    )


def build_notifications(
    settings: Settings,
    engine: Engine,
    *,
    clock: Callable[[], float] = time.time,
    sealer: SubjectSealer | None = None,
) -> Notifications:
    """The service on ``engine``; the sealer's key is the pseudonym key file (already checked
    by the secrets check when the broker starts)."""
    sealer = sealer or load_sealer(settings.pseudonym_key_file)
    store, registry = OutboxStore(engine), WebhookRegistry(engine, guard_for(settings))
    worker = DeliveryWorker(store, registry, delivery_policy(settings), sealer=sealer, clock=clock)
    return Notifications(store, registry, worker, sealer, clock)
