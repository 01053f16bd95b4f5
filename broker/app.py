"""The application factory: settings in, wired FastAPI app out. Nothing is built at import."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator

import structlog
from anyio import to_thread
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from adapters.sources import Sources
from broker import __version__
from broker.agreements.reminders import send_reminders
from broker.api import (
    admin,
    agreement_drafts,
    agreement_keys,
    agreements,
    audit,
    break_glass,
    consents,
    exchanges,
    health,
    impact,
    oauth,
    policy,
    problems,
    register,
    subjects,
    users,
    whoami,
)
from broker.api.middleware import RequestContextMiddleware
from broker.audit.redact import redact_by_retention
from broker.console.web import create_console_app
from broker.container import Services, build_services
from broker.settings import Settings

KEYRING_RELOAD_SECONDS = 60.0
log = structlog.get_logger("broker.app")

DESCRIPTION = """
The gateway through which a council and its partners share personal information under signed
Information Sharing Agreements. Partner systems authenticate with OAuth 2.0 client credentials
and `private_key_jwt` (RFC 7523), as NHS England's application-restricted APIs do: sign a JWT
with your registered key, exchange it at `POST /oauth2/token` for a short-lived access token,
and send that as `Authorization: Bearer <token>`.

Errors are RFC 9457 `application/problem+json` (the token endpoint uses RFC 6749 §5.2 JSON).
"""


REMINDER_INTERVAL_SECONDS = 3600.0
"""How often agreements' review-by and expiry reminders are checked (60, 30, 7 days ahead)."""


def _agreement_reminders(services: Services) -> None:
    last = services.policy_runtime.last
    if last is not None:
        now = dt.datetime.fromtimestamp(services.clock(), dt.UTC)
        send_reminders(services.engine, last.agreements, now)


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    """Build the app. ``services`` may be passed by tests; otherwise built from ``settings``."""
    services = services or build_services(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async def reload_keys() -> None:
            while True:
                await asyncio.sleep(KEYRING_RELOAD_SECONDS)
                with contextlib.suppress(Exception):  # keep the last good ring on a bad read
                    services.keyring.reload()

        async def watch_agreements() -> None:
            while True:
                await asyncio.sleep(settings.policy_poll_seconds)
                try:
                    await run_in_threadpool(services.policy_runtime.poll)
                except Exception as e:  # the runtime already keeps the last good revision
                    log.error("agreements watch failed", error=type(e).__name__)

        async def audit_jobs() -> None:
            """Checkpoints every N entries or T seconds; redaction by retention. On the one
            instance holding the job's lease (the outbox delivery has a lease of its own)."""
            last_redaction = 0.0
            last_reminders = 0.0
            last_escalation = services.clock()  # the first round a minute after start
            while True:
                await asyncio.sleep(1.0)
                try:
                    if not await run_in_threadpool(services.leases.audit.held):
                        continue  # another instance runs them
                    await run_in_threadpool(services.audit.checkpoint_if_due)
                    now = services.clock()
                    if now - last_reminders >= REMINDER_INTERVAL_SECONDS:
                        last_reminders = now
                        await run_in_threadpool(_agreement_reminders, services)
                    if now - last_escalation >= break_glass.ESCALATION_SECONDS:
                        last_escalation = now
                        await run_in_threadpool(break_glass.escalate, services)
                    if now - last_redaction >= settings.audit_redaction_interval_seconds:
                        last_redaction = now
                        await run_in_threadpool(
                            redact_by_retention,
                            services.audit,
                            settings.audit_retention_days,
                            now_ms=int(now * 1000),
                        )
                        keep_ms = settings.outbox_keep_days * 86_400_000
                        await run_in_threadpool(
                            services.notifications.outbox.prune, int(now * 1000) - keep_ms
                        )
                except Exception as e:  # logged; the next round tries again
                    log.error("audit job failed", error=type(e).__name__)

        # Blocking work (database reads and commits, the policy engine) goes to a pool of worker
        # threads. A small pool: dozens of threads contending for one GIL cost more CPU per
        # request than they win (2 processes, 128 clients: 371/s with anyio's 40, 505-607/s
        # with 8; docs/performance.md).
        to_thread.current_default_thread_limiter().total_tokens = settings.worker_threads
        if services.bindings is not None:
            services.sources = Sources(services.bindings)
        tasks = [
            asyncio.create_task(reload_keys()),
            asyncio.create_task(watch_agreements()),
            asyncio.create_task(audit_jobs()),
            asyncio.create_task(
                services.notifications.deliver_forever(services.leases.outbox.held)
            ),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if services.sources is not None:
                await services.sources.aclose()
                services.sources = None
            with contextlib.suppress(Exception):  # else another instance waits out the lease
                await run_in_threadpool(services.leases.release)
            services.metrics.process_exiting()

    app = FastAPI(
        title="Information Sharing Broker",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.services = services
    problems.install(app)
    # The sharing request first: routes are matched in order, and it is the one on the hot path.
    app.include_router(exchanges.router)
    app.include_router(oauth.router)
    app.include_router(whoami.router)
    app.include_router(health.router)
    app.include_router(admin.router)
    app.include_router(impact.router)
    app.include_router(agreement_drafts.router)  # before /v1/agreements/{agreement_id}
    app.include_router(agreement_keys.router)
    app.include_router(agreements.router)
    app.include_router(policy.router)
    app.include_router(audit.router)
    app.include_router(break_glass.router)
    app.include_router(register.router)
    app.include_router(consents.router)
    app.include_router(subjects.router)
    app.include_router(users.router)
    app.mount("/console", create_console_app(services))
    app.add_middleware(
        RequestContextMiddleware,
        metrics=services.metrics,
        max_body_bytes=settings.request_body_max_bytes,
    )
    return app
