"""The demo's registration is idempotent and puts every demo client back in working order."""

from __future__ import annotations

from pathlib import Path

from broker.container import build_services
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
