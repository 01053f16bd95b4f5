"""``broker policy push`` and ``opa-health`` through opa-python-client, against the OPA REST double
(not OPA: no OPA binary runs here; the double answers PUT /v1/policies/{id}, PUT /v1/data/{path}
and GET /health as OPA's REST API does)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from broker.cli.main import app as cli
from broker.policy.bundle import PolicyBundle, build_bundle, load_bundle
from broker.policy.compiled import compile_data
from broker.policy.embedded import EmbeddedEngine
from broker.policy.errors import BundleError
from broker.policy.input import build_input
from broker.policy.opa_push import OpaPushError, healthy, opa_client, push, push_bundle
from tests.policy.fixtures import DEMO_DATA, policy_modules, utc
from tests.policy.opa_double import OpaRestDouble
from tests.policy.test_decision_table import SG, SG_NOW
from tests.support import make_settings

runner = CliRunner()


def test_push_writes_every_module_and_the_data(embedded: EmbeddedEngine) -> None:
    _, blob = build_bundle(policy_modules(), compile_data(DEMO_DATA))
    with OpaRestDouble(embedded) as double:
        client = opa_client(double.url)
        with pytest.raises(BundleError, match="not signed"):
            push(client, blob, {})  # an unsigned bundle is never pushed
        assert double.policies == {}
        bundle = load_bundle(blob, None, require_signature=False)
        pushed = push_bundle(client, bundle)
        client.close_connection()
    assert pushed.revision == bundle.revision
    assert set(double.policies) == {f"broker/{p}" for p in bundle.modules}
    for path, source in bundle.modules.items():
        assert double.policies[f"broker/{path}"] == source
    assert double.data == dict(bundle.data)
    # What was pushed decides as the bundle does.
    pushed_engine = EmbeddedEngine(
        {p.removeprefix("broker/"): s for p, s in double.policies.items()},
        dict(double.data),
        bundle.revision,
    )
    policy_input = build_input(SG, utc(SG_NOW))
    assert pushed_engine.evaluate(policy_input) == embedded.evaluate(policy_input)
    assert pushed_engine.decide(policy_input).allow


def test_a_module_opa_refuses_stops_the_push(embedded: EmbeddedEngine) -> None:
    bad = PolicyBundle("r", {"policies/x.rego": "not rego"}, {"isa": {}}, {})
    with OpaRestDouble(embedded) as double:
        client = opa_client(double.url)
        with pytest.raises(OpaPushError, match="refused policy"):
            push_bundle(client, bad)
        client.close_connection()
    assert double.data == {}


def test_health_and_bundle_activation(embedded: EmbeddedEngine) -> None:
    with OpaRestDouble(embedded) as double:
        client = opa_client(double.url)
        assert healthy(client)
        double.bundles_activated = False
        assert healthy(client)
        assert not healthy(client, bundles=True)
        client.close_connection()
    client = opa_client(double.url, timeout_seconds=0.5)
    assert not healthy(client)  # the server is gone
    client.close_connection()


def test_an_opa_url_with_a_path_is_refused() -> None:
    with pytest.raises(ValueError, match="without a path"):
        opa_client("http://127.0.0.1:8181/v1/data")


def test_the_cli_pushes_the_served_bundle_and_checks_health(
    tmp_path: Path, embedded: EmbeddedEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'broker.db'}")
    monkeypatch.setenv("BROKER_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("BROKER_KEYS_DIR", str(settings.keys_dir))
    monkeypatch.setenv("BROKER_PSEUDONYM_KEY_FILE", str(settings.pseudonym_key_file))
    with OpaRestDouble(embedded) as double:
        pushed = runner.invoke(cli, ["policy", "push", "--opa-url", double.url])
        assert pushed.exit_code == 0, pushed.output
        assert "pushed revision" in pushed.output
        assert "broker/policies/sharing.rego" in double.policies
        assert "isa" in double.data
        health = runner.invoke(cli, ["policy", "opa-health", "--opa-url", double.url])
        assert health.exit_code == 0, health.output
        double.bundles_activated = False
        unhealthy = runner.invoke(
            cli, ["policy", "opa-health", "--opa-url", double.url, "--bundles"]
        )
        assert unhealthy.exit_code == 1
