"""Building the audit log from settings (called by the application factory and the CLI)."""

from __future__ import annotations

from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine

from broker.audit import store
from broker.audit.checkpoint import (
    key_hash,
    load_log_key,
    load_public_key,
    log_key_path,
    public_key_path,
)
from broker.audit.log import AuditLog, LogSigner
from broker.audit.store import CheckpointPolicy
from broker.core.errors import ConfigurationError
from broker.settings import Settings


def log_origin(public_url: str) -> str:
    """The log's name in checkpoints: ``<host[:port]><path>/audit`` of the public URL."""
    parts = urlsplit(public_url)
    return f"{parts.netloc}{parts.path.rstrip('/')}/audit"


def open_log(
    settings: Settings,
    engine: Engine,
    *,
    policy: CheckpointPolicy | None = None,
) -> AuditLog:
    """The audit log with the key at ``<keys_dir>/log/log-key.pem``.

    A missing key raises :class:`CheckpointError` (the CLI exits 2): only ``broker secrets init``
    makes one.
    """
    key = load_log_key(log_key_path(settings.keys_dir))
    return AuditLog(engine, LogSigner(log_origin(settings.public_url), key), policy=policy)


def check_log_identity(engine: Engine, signer: LogSigner) -> None:
    """Refuse (ConfigurationError) an instance whose log origin or log key differs from those of
    the log's newest stored checkpoint: it would sign checkpoints no party can verify against the
    others'. A log without checkpoints accepts any."""
    with store.reading(engine) as conn:
        latest = store.latest_checkpoint(conn)
    if latest is None:
        return
    if latest.origin != signer.origin:
        raise ConfigurationError(
            f"the audit log's checkpoints name the origin {latest.origin!r}, this instance's "
            f"public URL gives {signer.origin!r}: set BROKER_PUBLIC_URL as on the other instances"
        )
    stored = latest.signature()[0]
    mine = key_hash(signer.origin, signer.public_key).hex()
    if stored != mine:
        raise ConfigurationError(
            f"the audit log's checkpoints are signed by log key id {stored}, this instance's "
            f"log key has id {mine}: install the log key the other instances use (never a new "
            "one for an existing log)"
        )


def public_log_key(settings: Settings) -> Ed25519PublicKey:
    """The log's public key (``log-key.pub.pem`` beside the private key, else the private key)."""
    private = log_key_path(settings.keys_dir)
    public = public_key_path(private)
    return load_public_key(public if public.exists() else private)
