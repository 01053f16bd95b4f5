"""Startup checks of the secrets kept outside the database.

Outside ``--demo`` the broker refuses to start when a secret is missing, too short or a
placeholder. Only ``broker secrets init`` (and the demo's own set-up, which calls it for its demo
directory) creates them: ``serve`` never does, so several instances on one database cannot each
make a log key or a pseudonym secret of their own.
"""

from __future__ import annotations

import os
from pathlib import Path

from joserfc.jwk import ECKey

from broker.audit.checkpoint import generate_log_key, load_log_key, log_key_path
from broker.audit.errors import CheckpointError
from broker.auth.keyring import KeyRing, create_token_key
from broker.core.errors import ConfigurationError
from broker.pseudonym_keys import generate_key_file, load_pseudonym_keys
from broker.settings import MIN_SECRET_BYTES, PLACEHOLDER_SECRETS, Settings


def read_secret_file(path: Path, what: str) -> bytes:
    """Read a secret file and refuse missing, short or placeholder content."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as e:
        raise ConfigurationError(f"{what} file {path} is missing: run `broker secrets init`") from e
    except OSError as e:
        raise ConfigurationError(f"{what} file {path} cannot be read: {e.strerror}") from e
    stripped = data.strip()
    if stripped.decode("utf-8", "replace").lower() in PLACEHOLDER_SECRETS:
        raise ConfigurationError(f"{what} in {path} is a placeholder: set a real secret")
    if len(stripped) < MIN_SECRET_BYTES:
        raise ConfigurationError(f"{what} in {path} is shorter than {MIN_SECRET_BYTES} bytes")
    return stripped


BUNDLE_KEY_ID = "broker-bundle"


def bundle_key_path(keys_dir: Path) -> Path:
    """The key that signs OPA bundles (ES256: OPA does not verify EdDSA bundle signatures)."""
    return keys_dir / "bundle" / f"{BUNDLE_KEY_ID}.pem"


def load_bundle_key(keys_dir: Path) -> bytes:
    path = bundle_key_path(keys_dir)
    try:
        pem = path.read_bytes()
    except OSError as e:
        raise ConfigurationError(
            f"bundle signing key {path} is missing: run `broker secrets init`"
        ) from e
    if b"PRIVATE KEY" not in pem:
        raise ConfigurationError(f"bundle signing key {path} is not a private key")
    return pem


def check_secrets(settings: Settings) -> None:
    """Raise ConfigurationError unless every secret the broker needs is present and real."""
    KeyRing.load(settings.keys_dir)
    read_secret_file(settings.pseudonym_key_file, "pseudonym key")
    load_pseudonym_keys(settings.pseudonym_key_file)
    load_bundle_key(settings.keys_dir)
    path = log_key_path(settings.keys_dir)
    if not path.exists():
        raise ConfigurationError(
            f"log key {path} is missing: run `broker secrets init` once, and give every other "
            "instance a copy of the same key"
        )
    try:
        load_log_key(path)
    except CheckpointError as e:
        raise ConfigurationError(str(e)) from e


def init_secrets(settings: Settings) -> list[str]:
    """Create whichever secrets are missing (never overwrites). Returns what was created."""
    created: list[str] = []
    try:
        KeyRing.load(settings.keys_dir)
    except ConfigurationError:
        created.append(f"token signing key {create_token_key(settings.keys_dir)}")
    path = settings.pseudonym_key_file
    if not path.exists():
        generate_key_file(path)
        created.append(f"pseudonym key {path}")
    bundle = bundle_key_path(settings.keys_dir)
    if not bundle.exists():
        bundle.parent.mkdir(parents=True, exist_ok=True)
        key = ECKey.generate_key("P-256", private=True)
        fd = os.open(bundle, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key.as_pem(private=True))
        created.append(f"bundle signing key {bundle}")
    log_key = log_key_path(settings.keys_dir)
    if not log_key.exists():
        generate_log_key(log_key)
        created.append(f"log key {log_key}")
    return created
