"""What a partner system does: sign a client assertion for ``POST /oauth2/token``.

Used by ``broker token``, the demo, tests and benchmarks. Partner systems written in other
languages do the same with their own JOSE library (RFC 7523 §2.2).
"""

from __future__ import annotations

import secrets
import time
import warnings
from pathlib import Path

from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, OKPKey, RSAKey

PrivateKey = RSAKey | ECKey | OKPKey


def import_pem_key(data: bytes) -> PrivateKey | None:
    """An RSA, EC or Ed25519 key (public or private) from PEM; ``None`` when it is none of them."""
    for cls in (RSAKey, ECKey, OKPKey):
        try:
            return cls.import_key(data)
        except Exception:  # noqa: S112 - try the next key type
            continue
    return None


def load_private_key(path: Path) -> PrivateKey:
    """Read a PEM private key (RSA, EC P-256/384 or Ed25519). Raises ValueError."""
    key = import_pem_key(path.read_bytes())
    if key is None:
        raise ValueError(f"{path} is not an RSA, EC or Ed25519 PEM private key")
    if not key.is_private:
        raise ValueError(f"{path} holds a public key; a private key is needed to sign")
    return key


def default_alg(key: PrivateKey) -> str:
    if isinstance(key, RSAKey):
        return "RS512"  # what NHS England's API platform documents
    if isinstance(key, ECKey):
        return {"P-256": "ES256", "P-384": "ES384"}[key.curve_name]
    return "EdDSA"


def make_client_assertion(
    client_id: str,
    key: PrivateKey,
    token_url: str,
    *,
    kid: str | None = None,
    alg: str | None = None,
    lifetime_seconds: int = 60,
    now: float | None = None,
) -> str:
    """A signed assertion: iss = sub = client id, aud = token URL, fresh jti, short exp.

    ``kid`` defaults to the key's RFC 7638 thumbprint, which is how the broker names keys
    registered from a PEM file.
    """
    issued = int(time.time() if now is None else now)
    alg = alg or default_alg(key)
    header = {"alg": alg, "typ": "JWT", "kid": kid or key.thumbprint()}
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": token_url,
        "jti": secrets.token_urlsafe(16),
        "iat": issued,
        "exp": issued + lifetime_seconds,
    }
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=SecurityWarning)  # "EdDSA" per RFC 9864
        return jwt.encode(header, claims, key, algorithms=[alg])
