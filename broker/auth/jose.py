"""The JOSE algorithms the broker accepts, and safe helpers around joserfc.

Client assertions may use only asymmetric algorithms: an HMAC "signature" made with a client's
*public* key as the secret is a classic forgery, and ``none`` is no signature at all.
"""

from __future__ import annotations

import base64
import binascii
import json
import warnings
from collections.abc import Mapping
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import ECKey, OKPKey, RSAKey, import_key

#: Algorithms a partner system may sign its client assertion with (RFC 7518 / RFC 8037).
CLIENT_ASSERTION_ALGORITHMS: frozenset[str] = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA", "Ed25519"}
)

#: Which key type each accepted algorithm needs.
KEY_TYPE_FOR_ALG: Mapping[str, str] = {
    "RS256": "RSA",
    "RS384": "RSA",
    "RS512": "RSA",
    "PS256": "RSA",
    "ES256": "EC",
    "ES384": "EC",
    "EdDSA": "OKP",
    "Ed25519": "OKP",
}

PublicKey = RSAKey | ECKey | OKPKey


class MalformedJose(ValueError):
    """The compact serialisation could not be parsed at all."""


def _b64url_json(segment: str) -> dict[str, Any]:
    padded = segment + "=" * (-len(segment) % 4)
    try:
        value = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (binascii.Error, ValueError, UnicodeError) as e:
        raise MalformedJose("segment is not base64url JSON") from e
    if not isinstance(value, dict):
        raise MalformedJose("segment is not a JSON object")
    return value


def unverified_parts(compact: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a compact JWS, NOT verified: use only to find the key to verify with."""
    parts = compact.split(".")
    if len(parts) != 3:
        raise MalformedJose("expected three dot-separated parts")
    return _b64url_json(parts[0]), _b64url_json(parts[1])


def verify_compact(compact: str, key: PublicKey, alg: str) -> dict[str, Any]:
    """Verify a compact JWT's signature with ``key`` using exactly ``alg``; return its claims.

    ``EdDSA`` is accepted for interoperability although RFC 9864 deprecates the name in favour
    of ``Ed25519``; joserfc's deprecation warning for it is expected here and silenced.
    Raises :class:`joserfc.errors.JoseError` (or ValueError) when the signature does not verify.
    """
    if alg not in CLIENT_ASSERTION_ALGORITHMS:
        raise MalformedJose(f"algorithm {alg!r} is not allowed")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=SecurityWarning)
        token = jwt.decode(compact, key, algorithms=[alg])
    return dict(token.claims)


def import_public_jwk(data: Mapping[str, Any]) -> PublicKey:
    """Import one public JWK, refusing private material and symmetric keys."""
    if data.get("kty") not in {"RSA", "EC", "OKP"}:
        raise ValueError(f"key type {data.get('kty')!r} is not accepted (RSA, EC or OKP only)")
    if any(name in data for name in ("d", "p", "q", "dp", "dq", "qi")):
        raise ValueError("a public key set must not contain private key material")
    try:
        key = import_key(dict(data))
    except (JoseError, ValueError, TypeError) as e:
        raise ValueError(f"not a valid JWK: {e}") from e
    if not isinstance(key, RSAKey | ECKey | OKPKey):  # pragma: no cover - kty checked above
        raise ValueError("unsupported key type")
    if isinstance(key, RSAKey) and key.raw_value.key_size < 2048:
        raise ValueError("RSA keys must be at least 2048 bits")
    return key
