"""OPA sidecars: the generated configuration fits the bundle served, and OPA's own token requests
(as ``auth.go`` makes them) get a token, while every other client keeps every check."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from joserfc.jwk import ECKey
from typer.testing import CliRunner

from broker.app import create_app
from broker.auth.client_assertion import make_client_assertion
from broker.cli.main import app as cli
from broker.container import build_services
from broker.policy.bundle import VerificationKey, unpack, verify_signatures
from broker.policy.errors import BundleError
from broker.policy.opa_config import MAX_DELAY_SECONDS, MIN_DELAY_SECONDS
from broker.settings import Settings
from tests.policy.opa_sidecar_double import OpaSidecarDouble, decoded_header
from tests.support import Clock, LiveBroker, free_port, make_settings, public_jwk, serve_app

runner = CliRunner()


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveBroker]:
    """A broker whose public URL is https (a TLS terminator in front; it answers HTTP here)."""
    tmp = tmp_path_factory.mktemp("sidecar")
    port = free_port()
    config = make_settings(tmp, f"sqlite:///{tmp / 'broker.db'}", port=port)
    config = config.model_copy(update={"public_url": f"https://127.0.0.1:{port}"})
    clock = Clock()
    services = build_services(config, clock=clock)
    with serve_app(create_app(config, services), port) as url:
        live = LiveBroker(config, services, url, clock)
        try:
            yield live
        finally:
            live.http.close()
            services.close()


def _env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    monkeypatch.setenv("BROKER_PUBLIC_URL", settings.public_url)
    monkeypatch.setenv("BROKER_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("BROKER_KEYS_DIR", str(settings.keys_dir))
    monkeypatch.setenv("BROKER_PSEUDONYM_KEY_FILE", str(settings.pseudonym_key_file))


def _key_file(tmp_path: Path, key: ECKey) -> Path:
    path = tmp_path / "opa.pem"
    path.write_bytes(key.as_pem(private=True))
    return path


def generated_config(
    broker: LiveBroker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, client_id: str
) -> tuple[dict[str, Any], ECKey]:
    key = ECKey.generate_key("P-256", private=True)
    broker.register(client_id, scopes=("bundle",), party="council", key=key)
    _env(monkeypatch, broker.settings)
    out = tmp_path / "opa-config.yaml"
    args = ["policy", "opa-config", "--client-id", client_id]
    result = runner.invoke(
        cli, [*args, "--key-file", str(_key_file(tmp_path, key)), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert out.stat().st_mode & 0o777 == 0o600
    return yaml.safe_load(out.read_text()), key


def test_the_generated_config_names_the_key_of_the_bundle_served(
    broker: LiveBroker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config, _ = generated_config(broker, monkeypatch, tmp_path, "opa-one")
    kid = config["bundles"]["broker"]["signing"]["keyid"]
    key = config["keys"][kid]
    assert key["algorithm"] == "ES256"
    assert config["bundles"]["broker"]["polling"] == {
        "min_delay_seconds": MIN_DELAY_SECONDS,
        "max_delay_seconds": MAX_DELAY_SECONDS,
    }
    assert (MIN_DELAY_SECONDS, MAX_DELAY_SECONDS) == (1, 2)
    oauth2 = config["services"]["broker"]["credentials"]["oauth2"]
    assert oauth2["token_url"] == broker.settings.token_url
    assert oauth2["token_url"].startswith("https://")
    assert oauth2["grant_type"] == "client_credentials"
    assert oauth2["scopes"] == ["bundle"]
    assert oauth2["include_jti_claim"] is True
    assert oauth2["additional_claims"] == {
        "iss": "opa-one",
        "sub": "opa-one",
        "aud": broker.settings.token_url,
    }
    assert "PRIVATE KEY" in config["keys"][oauth2["signing_key"]]["private_key"]
    # The bundle actually served verifies with exactly that key id, algorithm and key.
    sidecar = OpaSidecarDouble(config)
    try:
        response = sidecar.fetch()
        assert response.status_code == 200, response.text
        files = unpack(response.content)
        assert verify_signatures(files, {kid: VerificationKey(key["key"].encode(), "ES256")}) == kid
        bundle = sidecar.activate(response.content)
        again = sidecar.fetch(response.headers["ETag"])
        assert again.status_code == 304
        assert response.headers["ETag"] == f'"{bundle.revision}"'
    finally:
        sidecar.close()


def test_a_config_for_another_algorithm_would_refuse_the_bundle(
    broker: LiveBroker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """What the old hand-written RS256 config did: OPA verifies with the configured algorithm."""
    config, _ = generated_config(broker, monkeypatch, tmp_path, "opa-two")
    kid = config["bundles"]["broker"]["signing"]["keyid"]
    config["keys"][kid]["algorithm"] = "RS256"
    sidecar = OpaSidecarDouble(config)
    try:
        response = sidecar.fetch()
        with pytest.raises(BundleError, match="algorithm"):
            sidecar.activate(response.content)
    finally:
        sidecar.close()


def test_opa_sends_no_kid_and_a_ten_minute_exp_and_gets_a_token(
    broker: LiveBroker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config, _ = generated_config(broker, monkeypatch, tmp_path, "opa-three")
    # A second registered key: OPA names none, so the broker tries the client's keys for ES256.
    other = ECKey.generate_key("P-256", private=True)
    broker.services.registry.add_key("opa-three", public_jwk(other), actor="test")
    assert len(broker.services.registry.get_client("opa-three").keys) == 2
    sidecar = OpaSidecarDouble(config)
    try:
        response = sidecar.request_token()
        assert response.status_code == 200, response.text
        assert decoded_header(sidecar.last_form["client_assertion"]) == {
            "typ": "JWT",
            "alg": "ES256",
        }
        assert sidecar.last_claims["exp"] - sidecar.last_claims["iat"] == 600
        assert sidecar.last_claims["scope"] == "bundle"
        assert sorted(sidecar.last_form) == [
            "client_assertion",
            "client_assertion_type",
            "client_id",
            "grant_type",
            "scope",
        ]
    finally:
        sidecar.close()


def test_opa_without_https_token_url_is_refused_by_the_generator(
    broker: LiveBroker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    key = ECKey.generate_key("P-256", private=True)
    _env(monkeypatch, broker.settings)
    result = runner.invoke(
        cli,
        [
            "policy",
            "opa-config",
            "--key-file",
            str(_key_file(tmp_path, key)),
            "--token-url",
            "http://127.0.0.1/oauth2/token",
            "--no-check-registry",
        ],
    )
    assert result.exit_code == 2
    assert "https" in result.output


def test_the_generator_refuses_a_client_with_more_than_the_bundle_scope(
    broker: LiveBroker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    key = broker.register("not-a-sidecar", scopes=("bundle", "exchange"), party="council")
    _env(monkeypatch, broker.settings)
    args = ["policy", "opa-config", "--client-id", "not-a-sidecar"]
    assert isinstance(key, ECKey)
    result = runner.invoke(cli, [*args, "--key-file", str(_key_file(tmp_path, key))])
    assert result.exit_code == 1
    assert "bundle scope only" in result.output


# ------------------------------------------------------------ every other client keeps every check


def _post(broker: LiveBroker, client_id: str, assertion: str) -> httpx.Response:
    return broker.http.post(
        "/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        },
    )


def _two_keys(broker: LiveBroker, client_id: str, scopes: tuple[str, ...]) -> ECKey:
    first = ECKey.generate_key("P-256", private=True)
    second = ECKey.generate_key("P-256", private=True)
    if "council" not in {p.id for p in broker.services.registry.list_parties()}:
        broker.services.registry.add_party("council", "Council", "other", None, actor="test")
    broker.services.registry.add_client(
        client_id,
        "council",
        client_id,
        {"keys": [public_jwk(first), public_jwk(second)]},
        list(scopes),
        actor="test",
    )
    return second


@pytest.mark.parametrize(
    ("scopes", "allowed"),
    [(("bundle",), True), (("exchange",), False), (("bundle", "oversight"), False)],
    ids=["bundle-only", "exchange", "bundle-and-more"],
)
def test_no_kid_with_several_keys_only_for_bundle_only_clients(
    broker: LiveBroker, scopes: tuple[str, ...], allowed: bool
) -> None:
    client_id = f"nokid-{'-'.join(scopes)}"
    key = _two_keys(broker, client_id, scopes)
    assertion = _assertion_without_kid(broker, client_id, key, lifetime=60)
    response = _post(broker, client_id, assertion)
    if allowed:
        assert response.status_code == 200, response.text
    else:
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"
        assert "no kid" in response.text


@pytest.mark.parametrize(
    ("scopes", "lifetime", "allowed"),
    [
        (("bundle",), 600, True),
        (("bundle",), 900, False),
        (("exchange",), 600, False),
        (("bundle", "oversight"), 600, False),
        (("exchange",), 300, True),
    ],
    ids=["bundle-600", "bundle-900", "exchange-600", "bundle-and-more-600", "exchange-300"],
)
def test_a_ten_minute_exp_only_for_bundle_only_clients(
    broker: LiveBroker, scopes: tuple[str, ...], lifetime: int, allowed: bool
) -> None:
    client_id = f"exp-{lifetime}-{'-'.join(scopes)}"
    key = broker.register(client_id, scopes=scopes, party="council")
    assertion = make_client_assertion(
        client_id, key, broker.token_url, lifetime_seconds=lifetime, now=broker.clock()
    )
    response = _post(broker, client_id, assertion)
    if allowed:
        assert response.status_code == 200, response.text
    else:
        assert response.status_code == 401
        assert "at most" in response.json()["error_description"]


def _assertion_without_kid(broker: LiveBroker, client_id: str, key: ECKey, lifetime: int) -> str:
    from joserfc import jwt

    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": broker.token_url,
        "jti": f"{client_id}-{now}",
        "iat": now,
        "exp": now + lifetime,
    }
    return jwt.encode({"typ": "JWT", "alg": "ES256"}, claims, key, algorithms=["ES256"])
