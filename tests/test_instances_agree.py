"""Instances that agree: only ``broker secrets init`` makes the log key and the pseudonym secret,
and an instance whose log key or origin differs from the log's refuses to start."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from broker.audit.checkpoint import generate_log_key, log_key_path
from broker.cli.main import app
from broker.container import build_services
from broker.core.errors import ConfigurationError
from broker.secrets_check import init_secrets
from broker.settings import Settings
from tests.support import make_settings

runner = CliRunner()


def _environment(monkeypatch: pytest.MonkeyPatch, config: Settings) -> None:
    monkeypatch.setenv("BROKER_DATABASE_URL", config.database_url)
    monkeypatch.setenv("BROKER_KEYS_DIR", str(config.keys_dir))
    monkeypatch.setenv("BROKER_PSEUDONYM_KEY_FILE", str(config.pseudonym_key_file))
    monkeypatch.setenv("BROKER_PUBLIC_URL", config.public_url)


def _first_instance(tmp_path: Path) -> Settings:
    """A log with a signed checkpoint, made by one instance that then stops."""
    config = make_settings(tmp_path, f"sqlite:///{tmp_path / 'broker.db'}")
    services = build_services(config)
    try:
        services.audit.checkpoint_now()
    finally:
        services.close()
    return config


def test_serve_creates_no_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = Settings(
        database_url=f"sqlite:///{tmp_path / 'broker.db'}",
        keys_dir=tmp_path / "keys",
        pseudonym_key_file=tmp_path / "keys" / "pseudonym.key",
    )
    _environment(monkeypatch, config)
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 2, result.output
    assert "broker secrets init" in result.output
    assert not (tmp_path / "keys").exists()


def test_serve_without_a_log_key_refuses_and_makes_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_settings(tmp_path, f"sqlite:///{tmp_path / 'broker.db'}")
    path = log_key_path(config.keys_dir)
    path.unlink()
    _environment(monkeypatch, config)
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 2, result.output
    assert "log key" in result.output
    assert "missing" in result.output
    assert not path.exists()
    with pytest.raises(ConfigurationError, match="broker secrets init"):
        build_services(config)
    assert not path.exists()
    assert init_secrets(config) == [f"log key {path}"]


def test_a_second_instance_with_the_same_key_and_origin_starts(tmp_path: Path) -> None:
    config = _first_instance(tmp_path)
    other = tmp_path / "other-host"
    shutil.copytree(config.keys_dir, other / "keys")  # the operator copies the secrets
    second = config.model_copy(
        update={"keys_dir": other / "keys", "pseudonym_key_file": other / "keys" / "pseudonym.key"}
    )
    build_services(second).close()


def test_an_instance_with_another_log_key_refuses_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _first_instance(tmp_path)
    path = log_key_path(config.keys_dir)
    path.unlink()
    path.with_name("log-key.pub.pem").unlink()
    generate_log_key(path)  # as if `secrets init` had been run on another host
    with pytest.raises(ConfigurationError, match=r"signed by log key id [0-9a-f]{8}"):
        build_services(config)
    _environment(monkeypatch, config)
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 2, result.output
    assert "the broker will not start" in result.output
    assert "install the log key the other instances use" in " ".join(result.output.split())


def test_an_instance_with_another_origin_refuses_to_start(tmp_path: Path) -> None:
    config = _first_instance(tmp_path)
    moved = config.model_copy(update={"public_url": "https://broker.elsewhere.example"})
    with pytest.raises(ConfigurationError, match=r"broker\.elsewhere\.example/audit"):
        build_services(moved)
