"""The broker's attestation key: Ed25519, a PEM file under ``<keys_dir>/attestation/``.

It signs attestations and consent receipts, never tokens (those have their own keys), so a
partner can trust one without trusting the other. Its public half is published as a JWKS at
``/.well-known/attestation-keys.json`` and can be exported for offline checks. The broker never
holds a party's private key: every statement here is the broker's own.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

from broker.attestation.errors import AttestationError, AttestationKeyError

#: The JWS algorithm (RFC 9864's fully specified name for Ed25519 signatures).
ALGORITHM: Final = "Ed25519"
KEY_FILE: Final = "attestation-key.pem"


def attestation_key_path(keys_dir: Path) -> Path:
    return keys_dir / "attestation" / KEY_FILE


@dataclass(frozen=True)
class AttestationSigner:
    """The private attestation key and its key id (RFC 7638 thumbprint)."""

    key: OKPKey = field(repr=False)

    @property
    def kid(self) -> str:
        return str(self.key.thumbprint())

    def sign(self, claims: Mapping[str, Any], typ: str) -> str:
        """A compact JWS of ``claims`` (JSON, sorted keys) with header ``alg``, ``kid``, ``typ``.

        Raises :class:`AttestationError` when the claims are not JSON.
        """
        try:
            payload = json.dumps(dict(claims), sort_keys=True, separators=(",", ":")).encode()
            header = {"alg": ALGORITHM, "kid": self.kid, "typ": typ}
            return str(jws.serialize_compact(header, payload, self.key, algorithms=[ALGORITHM]))
        except (TypeError, ValueError, JoseError) as e:
            raise AttestationError(f"could not sign the statement: {e}") from e

    def public_jwk(self) -> dict[str, Any]:
        jwk = dict(self.key.as_dict(private=False))
        jwk.update({"kid": self.kid, "alg": ALGORITHM, "use": "sig"})
        return jwk

    def jwks(self) -> dict[str, Any]:
        """The published key set (``/.well-known/attestation-keys.json``)."""
        return {"keys": [self.public_jwk()]}

    def public_pem(self) -> bytes:
        return bytes(self.key.as_pem(private=False))


def load_attestation_key(keys_dir: Path) -> AttestationSigner:
    """Read the key. Raises :class:`AttestationKeyError` when missing or not a private key."""
    path = attestation_key_path(keys_dir)
    try:
        key = OKPKey.import_key(path.read_bytes())
    except OSError as e:
        raise AttestationKeyError(f"attestation key {path} cannot be read: {e.strerror}") from e
    except Exception as e:  # joserfc raises several types for a bad PEM
        raise AttestationKeyError(f"attestation key {path} is not an Ed25519 key: {e}") from e
    if not key.is_private:
        raise AttestationKeyError(f"attestation key {path} is not a private key")
    return AttestationSigner(key)


def load_or_create_attestation_key(keys_dir: Path) -> AttestationSigner:
    """The key, created (owner-readable only) on first start. Never overwrites a file."""
    path = attestation_key_path(keys_dir)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = OKPKey.generate_key("Ed25519", private=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return load_attestation_key(keys_dir)  # another process made it first
        with os.fdopen(fd, "wb") as handle:
            handle.write(key.as_pem(private=True))
    return load_attestation_key(keys_dir)
