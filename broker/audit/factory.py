"""Building the audit log from settings (called by the application factory and the CLI)."""

from __future__ import annotations

from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine

from broker.audit.checkpoint import (
    load_log_key,
    load_or_generate_log_key,
    load_public_key,
    log_key_path,
    public_key_path,
)
from broker.audit.log import AuditLog, LogSigner
from broker.audit.store import CheckpointPolicy
from broker.settings import Settings


def log_origin(public_url: str) -> str:
    """The log's name in checkpoints: ``<host[:port]><path>/audit`` of the public URL."""
    parts = urlsplit(public_url)
    return f"{parts.netloc}{parts.path.rstrip('/')}/audit"


def open_log(
    settings: Settings,
    engine: Engine,
    *,
    create_key: bool = False,
    policy: CheckpointPolicy | None = None,
) -> AuditLog:
    """The audit log with the key at ``<keys_dir>/log/log-key.pem``.

    ``create_key`` makes the key on first start (``serve``); otherwise a missing key raises
    :class:`CheckpointError` (the CLI exits 2).
    """
    path = log_key_path(settings.keys_dir)
    key = load_or_generate_log_key(path) if create_key else load_log_key(path)
    return AuditLog(engine, LogSigner(log_origin(settings.public_url), key), policy=policy)


def public_log_key(settings: Settings) -> Ed25519PublicKey:
    """The log's public key (``log-key.pub.pem`` beside the private key, else the private key)."""
    private = log_key_path(settings.keys_dir)
    public = public_key_path(private)
    return load_public_key(public if public.exists() else private)
