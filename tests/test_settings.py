"""Settings and start-up refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from broker.container import build_services
from broker.core.errors import ConfigurationError
from broker.secrets_check import check_secrets, init_secrets
from broker.settings import Settings


def _settings(tmp_path: Path, **extra: object) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'b.db'}",
        keys_dir=tmp_path / "keys",
        pseudonym_key_file=tmp_path / "keys" / "pseudonym.key",
        **extra,  # type: ignore[arg-type]
    )


def test_defaults_need_no_server() -> None:
    config = Settings()
    assert config.database_url == "sqlite:///var/broker.db"
    assert config.policy_engine == "embedded"
    assert config.token_url == "http://127.0.0.1:8000/oauth2/token"


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROKER_PUBLIC_URL", "https://broker.calderbridge.example/")
    monkeypatch.setenv("BROKER_TOKEN_TTL_SECONDS", "120")
    config = Settings()
    assert config.token_url == "https://broker.calderbridge.example/oauth2/token"
    assert config.token_ttl_seconds == 120


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("public_url", "ftp://x", id="public-url-scheme"),
        pytest.param("token_ttl_seconds", 5, id="ttl-too-short"),
        pytest.param("policy_engine", "magic", id="unknown-engine"),
    ],
)
def test_bad_settings_are_refused(name: str, value: object) -> None:
    with pytest.raises(ValidationError, match=name):
        Settings(**{name: value})  # type: ignore[arg-type]


def test_start_is_refused_without_secrets(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no token signing key"):
        build_services(_settings(tmp_path))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(b"changeme\n", "placeholder", id="placeholder"),
        pytest.param(b"", "placeholder", id="empty"),
        pytest.param(b"0123456789", "shorter than 32 bytes", id="short"),
    ],
)
def test_a_weak_pseudonym_key_is_refused(tmp_path: Path, content: bytes, message: str) -> None:
    config = _settings(tmp_path)
    init_secrets(config)
    config.pseudonym_key_file.write_bytes(content)
    with pytest.raises(ConfigurationError, match=message):
        check_secrets(config)


def test_init_creates_secrets_once(tmp_path: Path) -> None:
    config = _settings(tmp_path)
    assert len(init_secrets(config)) == 4  # token, pseudonym, bundle and log keys
    assert init_secrets(config) == []
    check_secrets(config)
    assert oct(config.pseudonym_key_file.stat().st_mode & 0o777) == "0o600"


def test_a_demo_client_key_cannot_be_registered_outside_the_demo(tmp_path: Path) -> None:
    from broker.core.errors import InvalidInput
    from demo.keys import demo_client_key
    from tests.support import public_jwk

    config = _settings(tmp_path)
    init_secrets(config)
    services = build_services(config)
    services.registry.add_party("p1", "P", "other", None, actor="t")
    jwk = public_jwk(demo_client_key("wcp-mash"))
    with pytest.raises(InvalidInput, match="not acceptable") as caught:
        services.registry.add_client("c1", "p1", "c", {"keys": [jwk]}, ["exchange"], actor="t")
    assert "demo key" in caught.value.problems[0].message
    services.close()


def test_the_worker_thread_pool_is_sized_from_the_settings(tmp_path: Path) -> None:
    """The app's lifespan sizes the pool its blocking work runs on (``BROKER_WORKER_THREADS``)."""
    import anyio
    from anyio import to_thread

    from broker.app import create_app

    config = _settings(tmp_path, worker_threads=3)
    init_secrets(config)
    services = build_services(config)
    app = create_app(config, services)

    async def inside_lifespan() -> float:
        async with app.router.lifespan_context(app):
            return to_thread.current_default_thread_limiter().total_tokens

    try:
        assert anyio.run(inside_lifespan) == 3
    finally:
        services.close()
