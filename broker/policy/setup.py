"""Build the policy holder and runtime from settings (embedded engine or an OPA server)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from sqlalchemy import Engine

from broker.agreements.store import SqlAgreementStore, import_party_keys
from broker.auth.registry import Registry
from broker.core.errors import ConfigurationError, InvalidInput
from broker.core.signing_key import SigningKey
from broker.outbound import guard_for
from broker.policy.bundle import VerificationKey
from broker.policy.embedded import EmbeddedEngine
from broker.policy.holder import EngineFactory, PolicyHolder, opa_factory
from broker.policy.opa import OpaEngine
from broker.policy.runtime import PolicyRuntime
from broker.secrets_check import BUNDLE_KEY_ID, load_bundle_key
from broker.settings import Settings

BUNDLE_ALG = "ES256"
#: With an OPA sidecar: how long OPA may decide on a revision older than the bundle served before
#: its decisions are refused and the instance is not ready (OPA polls every 1 to 2 s).
OPA_MAX_REVISION_LAG_SECONDS = 2.0


def agreements_root(settings: Settings) -> Path:
    """The directory agreements are loaded from. The demo works on its own copy of the examples
    (``var/demo/agreements``, made by ``broker serve --demo``), so a tour that revokes an
    agreement never touches the repository; ``rm -r var/demo`` starts afresh."""
    if settings.demo and "agreements_dir" not in settings.model_fields_set:
        return settings.demo_dir / "agreements"
    return settings.agreements_dir


def bundle_keys(settings: Settings) -> tuple[SigningKey, dict[str, VerificationKey]]:
    pem = load_bundle_key(settings.keys_dir)
    private = serialization.load_pem_private_key(pem, password=None)
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return (
        SigningKey(pem, BUNDLE_KEY_ID, BUNDLE_ALG),
        {BUNDLE_KEY_ID: VerificationKey(public, BUNDLE_ALG)},
    )


def build_policy(
    settings: Settings,
    engine: Engine,
    registry: Registry,
    *,
    on_in_force: Callable[[int], None] | None = None,
) -> tuple[PolicyHolder, PolicyRuntime]:
    """The holder (engine swaps) and the runtime (directory -> bundle), loaded once.
    ``on_in_force`` is told how many agreements are in force after every load and revocation.

    In the demo the example party keys are imported into the trust store first (as an admin
    would with ``broker parties import-keys``)."""
    signing, verification = bundle_keys(settings)
    factory: EngineFactory = EmbeddedEngine.from_bundle
    opa: OpaEngine | None = None
    if settings.policy_engine == "opa":
        if not settings.opa_url:
            raise ConfigurationError("BROKER_POLICY_ENGINE=opa needs BROKER_OPA_URL")
        guard = guard_for(settings)
        try:
            guard.check_url(settings.opa_url, "BROKER_OPA_URL")
        except InvalidInput as e:
            problems = "; ".join(p.message for p in e.problems)
            raise ConfigurationError(f"BROKER_OPA_URL refused: {problems}") from e
        opa = OpaEngine(settings.opa_url, timeout_seconds=settings.opa_timeout_seconds, guard=guard)
        factory = opa_factory(opa, EmbeddedEngine.from_bundle)
    holder = PolicyHolder(
        factory,
        verification,
        max_revision_lag_seconds=None if opa is None else OPA_MAX_REVISION_LAG_SECONDS,
        probe=None if opa is None else opa.reported_revision,
    )
    root = agreements_root(settings)
    if settings.demo:
        import_party_keys(engine, root / "keys", "demo-bootstrap", demo=True)
    runtime = PolicyRuntime(
        root=root,
        policy_dir=settings.policy_dir,
        store=SqlAgreementStore(engine),
        holder=holder,
        signing_key=signing,
        known_parties=lambda: {p.id for p in registry.list_parties()},
        demo=settings.demo,
        on_in_force=on_in_force,
    )
    runtime.refresh()
    return holder, runtime
