"""The broker's services, built from settings in one place and handed to the app and the CLI."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine, text

from broker.audit.factory import open_log
from broker.audit.log import AuditLog
from broker.auth.access_log import AuditReadLog
from broker.auth.assertion import AssertionRules
from broker.auth.keyring import KeyRing
from broker.auth.registry import Registry
from broker.auth.replay import ReplayStore, SqlReplayStore
from broker.auth.tokens import TokenService
from broker.db import migrate
from broker.db.engine import build_engine
from broker.demo.keys import demo_key_thumbprints
from broker.observability import Metrics, build_metrics
from broker.policy.holder import PolicyHolder
from broker.policy.runtime import PolicyRuntime
from broker.policy.setup import build_policy
from broker.secrets_check import check_secrets
from broker.settings import Settings

#: A readiness check returns None when ready, or a short reason when not.
ReadinessCheck = Callable[[], str | None]


@dataclass
class Services:
    settings: Settings
    engine: Engine
    registry: Registry
    keyring: KeyRing
    tokens: TokenService
    replay: ReplayStore
    assertion_rules: AssertionRules
    metrics: Metrics
    audit_reads: AuditReadLog
    policy: PolicyHolder
    policy_runtime: PolicyRuntime
    audit: AuditLog
    clock: Callable[[], float] = time.time
    readiness: dict[str, ReadinessCheck] = field(default_factory=dict)
    notes: dict[str, ReadinessCheck] = field(default_factory=dict)
    """Things an operator should know that do not make the broker unready."""

    def close(self) -> None:
        self.engine.dispose()


def _database_ready(engine: Engine) -> ReadinessCheck:
    def check() -> str | None:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as e:  # any driver error means "not ready"
            return f"database unreachable: {type(e).__name__}"
        try:
            if not migrate.is_current(engine):
                return "database schema is not at the newest migration"
        except Exception as e:
            return f"migration state unknown: {type(e).__name__}"
        return None

    return check


def build_services(
    settings: Settings,
    *,
    clock: Callable[[], float] = time.time,
    run_migrations: bool = True,
    engine: Engine | None = None,
) -> Services:
    """Check secrets (outside demo mode too), open the database, load keys. Raises
    ConfigurationError when the broker must not start."""
    check_secrets(settings)
    engine = engine or build_engine(settings.database_url)
    if run_migrations:
        migrate.upgrade(engine)
    keyring = KeyRing.load(settings.keys_dir)
    registry = Registry(engine, frozenset() if settings.demo else demo_key_thumbprints())
    holder, runtime = build_policy(settings, engine, registry)
    refused = frozenset() if settings.demo else demo_key_thumbprints()
    services = Services(
        settings=settings,
        engine=engine,
        registry=registry,
        keyring=keyring,
        tokens=TokenService(keyring, settings.token_issuer, settings.token_ttl_seconds, clock),
        replay=SqlReplayStore(engine),
        assertion_rules=AssertionRules(
            audience=settings.token_url,
            max_lifetime_seconds=settings.assertion_max_lifetime_seconds,
            clock_skew_seconds=settings.clock_skew_seconds,
            max_bytes=settings.assertion_max_bytes,
            refused_key_thumbprints=refused,
        ),
        metrics=build_metrics(),
        audit_reads=AuditReadLog(engine),
        policy=holder,
        policy_runtime=runtime,
        audit=open_log(settings, engine, create_key=True),
        clock=clock,
    )
    services.readiness["database"] = _database_ready(engine)
    services.readiness["policy"] = runtime.readiness
    services.notes["policy"] = runtime.note
    return services
