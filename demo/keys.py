"""Demo client keys: committed, therefore public, therefore refused outside ``--demo``
(their thumbprints are in ``broker/core/published_keys.py``)."""

from __future__ import annotations

from pathlib import Path

from broker.auth.client_assertion import PrivateKey, load_private_key

DEMO_CLIENT_KEYS_DIR = Path(__file__).parent / "client_keys"


def demo_client_key_path(client_id: str) -> Path:
    return DEMO_CLIENT_KEYS_DIR / f"{client_id}.pem"


def demo_client_key(client_id: str) -> PrivateKey:
    return load_private_key(demo_client_key_path(client_id))
