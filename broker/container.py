"""The broker's services, built from settings in one place and handed to the app and the CLI."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine, text

from adapters.bindings import BindingSet, load_bindings
from adapters.sources import Sources
from broker.audit.factory import check_log_identity, open_log
from broker.audit.log import AuditLog
from broker.audit.store import CheckpointPolicy
from broker.auth.assertion import AssertionRules
from broker.auth.keyring import KeyRing
from broker.auth.registry import Registry
from broker.auth.replay import ReplayStore, SqlReplayStore
from broker.auth.tokens import TokenService
from broker.core.errors import NotFound
from broker.core.pseudonym import PseudonymKeyring
from broker.core.published_keys import refused_thumbprints
from broker.db import migrate
from broker.db.engine import build_engine
from broker.db.leases import JobLeases
from broker.exchange.document_types import TYPE_FIELD
from broker.exchange.idempotency import IdempotencyStore, OnceOnly
from broker.exchange.limits import ClientRateLimiter, VerificationLimiter
from broker.exchange.ports import DatasetFacts
from broker.exchange.service import ExchangeService
from broker.identity.citizen_exchange import CitizenIdentity, build_citizen_identity
from broker.identity.service import IdentityProviders, build_identity
from broker.identity.suspensions import UserSuspensions
from broker.notify.service import Notifications, build_notifications
from broker.observability import Metrics, build_metrics
from broker.policy.holder import PolicyHolder
from broker.policy.runtime import PolicyRuntime
from broker.policy.setup import build_policy
from broker.pseudonym_keys import load_pseudonym_keys
from broker.secrets_check import check_secrets
from broker.settings import Settings
from broker.subjects.wiring import SourceSubjects, SubjectServices, build_subject_services

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
    policy: PolicyHolder
    policy_runtime: PolicyRuntime
    audit: AuditLog
    pseudonyms: PseudonymKeyring
    exchanges: ExchangeService
    rate_limiter: ClientRateLimiter
    idempotency: IdempotencyStore
    once_only: OnceOnly
    """Exchanges with an ``Idempotency-Key`` (over ``exchanges`` and ``idempotency``)."""
    subjects: SubjectServices
    """Consents, held exchanges (preview), the attestation key, the pseudonym keyring."""
    notifications: Notifications
    identity: IdentityProviders
    citizens: CitizenIdentity
    """Citizen identity providers and links (citizens' own tokens, broker/identity/)."""
    suspensions: UserSuspensions
    """Verified users suspended by their party's governance officers (a one-second snapshot)."""
    leases: JobLeases
    """Periodic jobs run on the one instance holding their lease (broker/db/leases.py)."""
    bindings: BindingSet | None = None
    sources: Sources | None = None
    """Built in the app's lifespan (its HTTP pools belong to the event loop)."""
    clock: Callable[[], float] = time.time
    readiness: dict[str, ReadinessCheck] = field(default_factory=dict)
    notes: dict[str, ReadinessCheck] = field(default_factory=dict)
    """Things an operator should know that do not make the broker unready."""

    def close(self) -> None:
        self.policy.close()
        with contextlib.suppress(Exception):  # the database may be gone: the lease runs out
            self.leases.close()
        self.engine.dispose()


def _database_ready(engine: Engine) -> ReadinessCheck:
    def check() -> str | None:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as e:  # any driver error means "not ready"
            return f"database unreachable: {type(e).__name__}"
        try:
            if not migrate.is_current(engine) and not migrate.is_ahead(engine):
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
    bindings: BindingSet | None = None,
    metrics: Metrics | None = None,
) -> Services:
    """Check secrets (outside demo mode too), open the database, load keys. Raises
    ConfigurationError when the broker must not start. ``metrics`` defaults to this process's
    own (a server process among several passes the shared ones)."""
    check_secrets(settings)
    engine = engine or build_engine(settings.database_url)
    if run_migrations:
        migrate.upgrade(engine)
    keyring = KeyRing.load(settings.keys_dir)
    refused = refused_thumbprints(demo=settings.demo)
    registry = Registry(engine, refused)
    metrics = metrics or build_metrics()
    holder, runtime = build_policy(
        settings, engine, registry, on_in_force=metrics.agreements_in_force.set
    )
    audit = open_log(
        settings,
        engine,
        policy=CheckpointPolicy(
            settings.audit_checkpoint_every_entries, settings.audit_checkpoint_every_seconds
        ),
    )
    check_log_identity(engine, audit.signer)
    pseudonyms = load_pseudonym_keys(settings.pseudonym_key_file)
    if bindings is None and settings.bindings_file is not None:
        bindings = load_bindings(settings.bindings_file)
    holder_ref: list[Services] = []
    subjects = build_subject_services(
        settings,
        engine,
        audit,
        runtime,
        clock,
        SourceSubjects(lambda: holder_ref[0].sources if holder_ref else None),
    )

    facts_cache: dict[int, dict[str, DatasetFacts]] = {}

    def datasets(dataset_id: str) -> DatasetFacts | None:
        """Facts of a dataset from the verified register, computed once per load."""
        last = runtime.last
        if last is None:
            return None
        table = facts_cache.get(id(last))
        if table is None:
            consent: dict[str, set[str]] = {}
            for verified in last.agreements:
                a = verified.agreement
                if a is None:
                    continue
                for flow in a.flows:
                    c = flow.conditions.consent
                    if c is not None and c.required:
                        consent.setdefault(flow.dataset, set()).add(a.id)
            table = {
                e.id: DatasetFacts(
                    e.owner,
                    frozenset(e.subject_id_types),
                    frozenset(consent.get(e.id, ())),
                    typed_documents=TYPE_FIELD in e.field_names(),
                    fields=frozenset(e.field_names()),
                )
                for e in last.register.entries.values()
            }
            facts_cache.clear()
            facts_cache[id(last)] = table
        return table.get(dataset_id)

    notifications = build_notifications(settings, engine, clock=clock)
    identity = build_identity(settings, engine)

    party_names: dict[str, str] = {}

    def party_name(party_id: str) -> str:
        """For notification summaries only; a renamed party shows its new name after a restart."""
        name = party_names.get(party_id)
        if name is None:
            try:
                name = registry.get_party(party_id).name
            except NotFound:
                return party_id
            party_names[party_id] = name
        return name

    preview_cache: dict[int, frozenset[tuple[str, str]]] = {}

    def preview_required(agreement_id: str, flow_id: str) -> bool:
        """Flows whose consent condition asks for the citizen's preview (per load)."""
        last = runtime.last
        if last is None:
            return False
        flows = preview_cache.get(id(last))
        if flows is None:
            flows = frozenset(
                (v.agreement.id, f.id)
                for v in last.agreements
                if v.agreement is not None
                for f in v.agreement.flows
                if f.conditions.consent is not None and f.conditions.consent.citizen_preview
            )
            preview_cache.clear()
            preview_cache[id(last)] = flows
        return (agreement_id, flow_id) in flows

    idempotency = IdempotencyStore(engine, settings.idempotency_ttl_seconds)
    suspensions = UserSuspensions(engine)
    exchanges = ExchangeService(
        policy=holder,
        audit=audit,
        pseudonyms=pseudonyms,
        sources=lambda: holder_ref[0].sources if holder_ref else None,
        datasets=datasets,
        verification_limiter=VerificationLimiter(
            engine,
            per_record=settings.verify_limit_per_record,
            per_flow=settings.verify_limit_per_party_flow_record,
            window_seconds=settings.verify_limit_window_seconds,
        ),
        consents=subjects.consents,
        identity=identity,
        notifications=notifications,
        party_name=party_name,
        attester=subjects,
        previews=subjects.previews,
        preview_required=preview_required,
        preview_ttl_seconds=settings.preview_ttl_seconds,
        test_range_only=settings.demo,
        suspensions=suspensions,
        now=lambda: dt.datetime.fromtimestamp(clock(), dt.UTC),
    )
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
        metrics=metrics,
        policy=holder,
        policy_runtime=runtime,
        audit=audit,
        pseudonyms=pseudonyms,
        exchanges=exchanges,
        rate_limiter=ClientRateLimiter(
            settings.rate_limit_per_second,
            settings.rate_limit_burst,
            settings.rate_limit_overrides,
            processes=settings.workers,
            redis_url=settings.redis_url,
        ),
        idempotency=idempotency,
        once_only=OnceOnly(exchanges, idempotency, clock),
        bindings=bindings,
        subjects=subjects,
        notifications=notifications,
        identity=identity,
        citizens=build_citizen_identity(
            engine,
            identity.jwks,
            pseudonyms,
            refused_thumbprints=identity.store.refused_thumbprints,
            max_age_seconds=settings.id_token_max_age_seconds,
            skew_seconds=settings.clock_skew_seconds,
        ),
        suspensions=suspensions,
        leases=JobLeases(engine, seconds=settings.job_lease_seconds),
        clock=clock,
    )
    holder_ref.append(services)
    services.readiness["database"] = _database_ready(engine)
    services.readiness["policy"] = runtime.readiness
    if services.rate_limiter.shared:
        services.readiness["rate_limits"] = services.rate_limiter.readiness
    services.notes["policy"] = runtime.note
    services.notes["agreements"] = runtime.in_force_note
    services.notes["notifications"] = services.notifications.note
    return services
