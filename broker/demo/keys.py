"""Demo client keys: committed, therefore public, therefore refused outside ``--demo``."""

from __future__ import annotations

import functools
from pathlib import Path

from broker.auth.client_assertion import PrivateKey, load_private_key

DEMO_CLIENT_KEYS_DIR = Path(__file__).parent / "client_keys"


def demo_client_key_path(client_id: str) -> Path:
    return DEMO_CLIENT_KEYS_DIR / f"{client_id}.pem"


def demo_client_key(client_id: str) -> PrivateKey:
    return load_private_key(demo_client_key_path(client_id))


@functools.cache
def demo_key_thumbprints() -> frozenset[str]:
    """RFC 7638 thumbprints of every committed demo key (what is refused outside the demo)."""
    return frozenset(
        load_private_key(path).thumbprint() for path in sorted(DEMO_CLIENT_KEYS_DIR.glob("*.pem"))
    )
