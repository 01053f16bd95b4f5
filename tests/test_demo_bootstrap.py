"""The demo's registration is idempotent and puts every demo client back in working order."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from broker.container import build_services
from broker.core.identifiers import RoleBinding
from broker.db.tables import admin_events
from demo import bootstrap
from demo.parties import DEMO_CLIENTS, DEMO_PARTIES
from tests.support import make_settings


def test_demo_registration_is_idempotent_and_reactivates(tmp_path: Path) -> None:
    config = make_settings(tmp_path, f"sqlite:///{tmp_path / 'b.db'}", demo=True)
    first = bootstrap.prepare(config, tmp_path / "keys-out")
    services = build_services(config)
    assert services.policy_runtime.last is not None
    assert len(services.policy_runtime.last.active()) == 5
    assert {c.client_id for c in first} == {c.id for c in DEMO_CLIENTS}
    assert all(c.key_path.read_bytes().startswith(b"-----BEGIN") for c in first)
    services.registry.set_status("wcp-mash", "suspended", actor="tour")
    services.registry.set_scopes("ccc-governance", ["exchange"], actor="tour")
    bootstrap.register(services.registry, tmp_path / "keys-out")
    assert services.registry.get_client("wcp-mash").active
    assert services.registry.get_client("ccc-governance").scopes == ("governance",)
    assert len(services.registry.list_parties()) == len(DEMO_PARTIES)
    assert any("governance" in c.scopes for c in services.registry.list_clients())
    services.close()


def test_demo_settings_keep_what_the_operator_set(tmp_path: Path) -> None:
    config = make_settings(tmp_path, f"sqlite:///{tmp_path / 'mine.db'}")
    demo = bootstrap.demo_settings(config)
    assert demo.demo
    assert demo.database_url == config.database_url
    assert demo.keys_dir == config.keys_dir


def test_each_demo_system_is_bound_to_the_roles_of_its_real_function(tmp_path: Path) -> None:
    config = make_settings(tmp_path, f"sqlite:///{tmp_path / 'b.db'}", demo=True)
    bootstrap.prepare(config, tmp_path / "keys-out")
    services = build_services(config)
    registry = services.registry
    sg = "ISA-SAFEGUARDING-CHILDREN"
    assert registry.get_client("r9z-ed-safeguarding").roles == (
        RoleBinding("safeguarding-nurse", sg),
        RoleBinding("ed-doctor", sg),
    )
    discharge = registry.get_client("r9z-discharge").roles
    assert discharge == (RoleBinding("discharge-coordinator", "ISA-HOSPITAL-DISCHARGE"),)
    # Every role a demo system is bound to is a requester role of the agreement it names.
    assert services.policy_runtime.last is not None
    agreements = {
        v.agreement.id: v.agreement
        for v in services.policy_runtime.last.agreements
        if v.agreement is not None
    }
    for demo in DEMO_CLIENTS:
        for binding in demo.roles:
            assert binding.agreement_id is not None
            flows = agreements[binding.agreement_id].flows
            assert any(binding.role in f.conditions.requester_roles for f in flows), binding
    with services.engine.connect() as conn:
        bound = conn.execute(
            sa.select(admin_events.c.actor).where(admin_events.c.action == "client.bind")
        ).all()
    assert {a for (a,) in bound} == {bootstrap.ACTOR}
    assert len(bound) == sum(len(c.roles) for c in DEMO_CLIENTS)
    assert [c.id for c in registry.list_clients() if c.unbound] == ["ccc-childrens-services"]

    # A binding a tour added is removed again, one a tour removed is restored.
    registry.bind("r9z-discharge", "safeguarding-nurse", actor="tour")
    registry.unbind("r9z-ed-safeguarding", "ed-doctor", sg, actor="tour")
    bootstrap.register(registry, tmp_path / "keys-out")
    assert registry.get_client("r9z-discharge").roles == discharge
    assert RoleBinding("ed-doctor", sg) in registry.get_client("r9z-ed-safeguarding").roles
    services.close()


def test_a_demo_made_from_older_examples_is_moved_aside_and_made_afresh(tmp_path: Path) -> None:
    """A checkout that changed the example agreements cannot load the old demo's copy (its log
    saw version 1 with another digest): the old demo directory is kept aside, a new one made."""
    demo_dir = tmp_path / "demo"
    config = make_settings(tmp_path, f"sqlite:///{demo_dir}/broker.db", demo=True)
    assert config.demo_dir == demo_dir
    bootstrap.prepare(config, tmp_path / "keys-out")
    assert bootstrap.move_aside_stale_demo(config) is None  # the same examples: kept
    copy = demo_dir / "agreements" / "isa" / "ISA-PROOF-REUSE.yaml"
    copy.write_text(copy.read_text().replace("attestation_valid_hours: 72", ""))
    bootstrap.prepare(config, tmp_path / "keys-out")
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("demo.old-")]
    assert len(aside) == 1
    assert (aside[0] / "broker.db").exists()  # nothing deleted
    services = build_services(config)
    assert services.policy_runtime.last is not None
    assert len(services.policy_runtime.last.active()) == 5
    services.close()
