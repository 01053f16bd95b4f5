"""Set up the demo: its own database and secrets under ``var/demo``, parties, clients, keys.

Idempotent: running it again keeps what is there (the audit log survives restarts) and adds
what is missing.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import structlog

from broker.auth.registry import Registry
from broker.core.identifiers import RoleBinding
from broker.core.published_keys import refused_thumbprints
from broker.db import migrate
from broker.db.engine import build_engine
from broker.identity.citizen_store import CitizenProviderStore
from broker.identity.store import IdentityProviderStore
from broker.secrets_check import init_secrets
from broker.settings import Settings
from demo.citizen_identity import register_demo_citizen_provider
from demo.console import create_demo_officers
from demo.identity import register_demo_identity_providers
from demo.keys import demo_client_key, demo_client_key_path
from demo.parties import DEMO_CLIENTS, DEMO_PARTIES, DemoClient

ACTOR = "demo-bootstrap"


DEMO_OUTBOUND_ALLOW = ("127.0.0.0/8", "::1", "localhost")
"""The demo's own services on loopback (its webhook receiver, its identity providers' key sets,
a local OPA): the only inside addresses the demo broker may connect to."""


def demo_settings(settings: Settings) -> Settings:
    """The demo's own database, secret and agreement locations, unless the operator set them; its
    loopback services added to the outbound allow-list. Every derived value is written into the
    settings returned (nothing left for a later reader to derive again: worker processes get
    these settings as they are)."""
    overrides: dict[str, object] = {
        "demo": True,
        "outbound_allow": [
            *settings.outbound_allow,
            *(a for a in DEMO_OUTBOUND_ALLOW if a not in settings.outbound_allow),
        ],
    }
    demo_dir = settings.demo_dir
    defaults = {
        "database_url": f"sqlite:///{demo_dir}/broker.db",
        "keys_dir": demo_dir / "secrets",
        "pseudonym_key_file": demo_dir / "secrets" / "pseudonym.key",
        # The demo's own copy of the examples (broker.policy.setup.agreements_root).
        "agreements_dir": demo_dir / "agreements",
    }
    for name, value in defaults.items():
        if name not in settings.model_fields_set:
            overrides[name] = value
    return settings.model_copy(update=overrides)


EXAMPLES = Path("agreements/examples")
log = structlog.get_logger("demo")


def _stale_copy(root: Path) -> str | None:
    """The first example file the demo's copy lacks or holds otherwise, or None."""
    for example in sorted(EXAMPLES.rglob("*")):
        if not example.is_file():
            continue
        copy = root / example.relative_to(EXAMPLES)
        if not copy.is_file() or copy.read_bytes() != example.read_bytes():
            return str(example)
    return None


def move_aside_stale_demo(settings: Settings) -> Path | None:
    """A demo made from older example agreements (a checkout since changed them) cannot load
    them: the log has seen each agreement's version 1 with another digest, which the broker
    refuses as it should. Such a demo directory is moved aside whole (nothing is deleted) and a
    fresh demo is made; returns where the old one went. Only for the demo's own directory and
    database (an operator who set either keeps them)."""
    from broker.policy.setup import agreements_root

    demo_dir = settings.demo_dir
    root = agreements_root(settings)
    own = root == demo_dir / "agreements" and settings.database_url == (
        f"sqlite:///{demo_dir}/broker.db"
    )
    changed = _stale_copy(root) if own and root.exists() else None
    if changed is None:
        return None
    aside = demo_dir.with_name(f"{demo_dir.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
    demo_dir.rename(aside)
    log.warning(
        "the demo was made from older example agreements: moved aside, a fresh demo is made",
        changed=changed,
        moved_to=str(aside),
    )
    return aside


def copy_examples(settings: Settings) -> None:
    """Give the demo its own copy of the example agreements (kept across restarts)."""
    from broker.policy.setup import agreements_root

    root = agreements_root(settings)
    if not root.exists():
        root.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(EXAMPLES, root)


@dataclass(frozen=True)
class DemoClientInfo:
    client_id: str
    party_id: str
    scopes: tuple[str, ...]
    key_path: Path


def prepare(settings: Settings, keys_out: Path) -> list[DemoClientInfo]:
    """Secrets, schema, parties, clients and identity providers: everything the demo needs
    before services start. A demo made from older example agreements is moved aside first."""
    move_aside_stale_demo(settings)
    init_secrets(settings)
    copy_examples(settings)
    engine = build_engine(settings.database_url, pool_size=2)
    try:
        migrate.upgrade(engine)
        clients = register(Registry(engine), keys_out)
        register_demo_identity_providers(IdentityProviderStore(engine))  # demo/identity.py
        create_demo_officers(settings, engine)  # console sign-ins (see docs/console.md)
        # The council's citizen sign-in: the portal's citizens prove who they are.
        register_demo_citizen_provider(
            CitizenProviderStore(
                engine, refused_thumbprints=refused_thumbprints(demo=settings.demo)
            )
        )
        return clients
    finally:
        engine.dispose()


def register(registry: Registry, keys_out: Path) -> list[DemoClientInfo]:
    """Register demo parties and clients and copy their private keys to ``keys_out``."""
    known_parties = {p.id for p in registry.list_parties()}
    for party in DEMO_PARTIES:
        if party.id not in known_parties:
            registry.add_party(party.id, party.name, party.kind, party.ods_code, actor=ACTOR)
    keys_out.mkdir(parents=True, exist_ok=True)
    infos = []
    for demo in DEMO_CLIENTS:
        source = demo_client_key_path(demo.id)
        target = keys_out / f"{demo.id}.pem"
        shutil.copyfile(source, target)
        target.chmod(0o600)
        key = demo_client_key(demo.id)
        jwk = {**key.as_dict(private=False), "kid": key.thumbprint()}
        existing = registry.find_client(demo.id)
        if existing is None:
            registry.add_client(
                demo.id, demo.party_id, demo.name, {"keys": [jwk]}, list(demo.scopes), actor=ACTOR
            )
        else:
            if jwk["kid"] not in {k.get("kid") for k in existing.keys}:
                registry.add_key(demo.id, jwk, actor=ACTOR)
            if not existing.active:  # a tour suspended it last time: every scenario works again
                registry.set_status(demo.id, "active", actor=ACTOR)
            if set(existing.scopes) != set(demo.scopes):
                registry.set_scopes(demo.id, list(demo.scopes), actor=ACTOR)
        bind_roles(registry, demo, () if existing is None else existing.roles)
        infos.append(DemoClientInfo(demo.id, demo.party_id, demo.scopes, target))
    return infos


def bind_roles(registry: Registry, demo: DemoClient, bound: tuple[RoleBinding, ...]) -> None:
    """Bind the demo system to the roles of its real function and to no other: a binding a tour
    added is removed again, each change an admin event by ``demo-bootstrap``."""
    for binding in demo.roles:
        if binding not in bound:
            registry.bind(demo.id, binding.role, binding.agreement_id, binding.flow_id, actor=ACTOR)
    for binding in bound:
        if binding not in demo.roles:
            registry.unbind(
                demo.id, binding.role, binding.agreement_id, binding.flow_id, actor=ACTOR
            )
