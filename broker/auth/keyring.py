"""The broker's own token-signing keys, kept as PEM files outside the database.

Layout: ``<keys_dir>/token/<kid>.pem`` (P-256 private keys). Key ids sort by creation time,
so the newest file signs and every file present verifies. Rotation adds a newer key; tokens
signed with the older one stay valid until it is retired (removed), which an operator does once
the longest token lifetime has passed. Processes sharing the directory pick up a new key the
first time they meet its ``kid``.

New keys are EC P-256 and sign ``ES256``: the one asymmetric algorithm every common JOSE
library verifies by default (PyJWT, authlib's RFC 9068 validator, which refuses EdDSA unless told,
Nimbus, jose4j, Microsoft.IdentityModel). A deployment that began with an Ed25519 key keeps it
until rotated: it signs (header ``EdDSA``, RFC 8037, the name libraries know), it is published as
``EdDSA``, and tokens it signed under RFC 9864's name ``Ed25519`` still verify, so
``broker secrets rotate-token-key`` moves to ES256 without refusing a token in flight.
"""

from __future__ import annotations

import os
import secrets
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from joserfc.jwk import ECKey, OKPKey

from broker.core.errors import ConfigurationError, NotFound
from broker.core.signing_key import SigningKey

TOKEN_KEY_ALG = "ES256"  # noqa: S105 - the algorithm new token keys sign with
#: An Ed25519 key (one made before ES256) signs as ``EdDSA`` (RFC 8037) and verifies its tokens
#: under that name or RFC 9864's ``Ed25519``.
LEGACY_KEY_ALG = "EdDSA"
_ALGS_FOR_KEY: dict[str, frozenset[str]] = {
    "EC": frozenset({"ES256"}),
    "OKP": frozenset({"EdDSA", "Ed25519"}),
}
#: Every name a token of this broker may carry in its header (each checked against its key).
TOKEN_VERIFY_ALGS: frozenset[str] = frozenset().union(*_ALGS_FOR_KEY.values())

TokenKey = ECKey | OKPKey


def signing_alg(key: TokenKey) -> str:
    """The ``alg`` a token key signs (and is published) with."""
    return TOKEN_KEY_ALG if isinstance(key, ECKey) else LEGACY_KEY_ALG


def verify_algs(key: TokenKey) -> frozenset[str]:
    """The header ``alg`` names a token signed with ``key`` may carry."""
    return _ALGS_FOR_KEY[key.key_type]


def import_token_key(pem: bytes) -> TokenKey:
    """A P-256 or Ed25519 key from PEM. Raises ValueError for anything else."""
    try:
        key: TokenKey = ECKey.import_key(pem)
    except Exception:  # joserfc raises several types for the wrong key type
        try:
            key = OKPKey.import_key(pem)
        except Exception as e:
            raise ValueError(f"not an EC P-256 or Ed25519 key: {e}") from e
    if isinstance(key, ECKey) and key.curve_name != "P-256":
        raise ValueError(f"EC curve {key.curve_name} is not P-256")
    if isinstance(key, OKPKey) and key.curve_name != "Ed25519":
        raise ValueError(f"OKP curve {key.curve_name} is not Ed25519")
    return key


def token_keys_dir(keys_dir: Path) -> Path:
    return keys_dir / "token"


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def create_token_key(keys_dir: Path, *, now: datetime | None = None) -> str:
    """Create a new signing key; it becomes the current one. Returns its ``kid``."""
    now = now or datetime.now(UTC)
    kid = f"tok-{now:%Y%m%dT%H%M%S%f}-{secrets.token_hex(3)}"
    key = ECKey.generate_key("P-256", private=True)
    _write_private(token_keys_dir(keys_dir) / f"{kid}.pem", key.as_pem(private=True))
    return kid


def retire_token_key(keys_dir: Path, kid: str) -> None:
    """Remove a key so tokens it signed stop verifying. The current key cannot be retired."""
    ring = KeyRing.load(keys_dir)
    if kid not in ring.kids():
        raise NotFound(f"no token key {kid!r}")
    if ring.current().kid == kid:
        raise ConfigurationError("the current signing key cannot be retired: rotate first")
    (token_keys_dir(keys_dir) / f"{kid}.pem").unlink()


class KeyRing:
    """The broker's token keys: the newest signs, all verify. Thread-safe reloads."""

    def __init__(self, keys_dir: Path, keys: dict[str, TokenKey]) -> None:
        self._keys_dir = keys_dir
        self._keys = keys
        self._lock = threading.Lock()

    @classmethod
    def load(cls, keys_dir: Path) -> KeyRing:
        """Read every key. Raises ConfigurationError when there is none or one is unreadable."""
        return cls(keys_dir, cls._read(keys_dir))

    @staticmethod
    def _read(keys_dir: Path) -> dict[str, TokenKey]:
        directory = token_keys_dir(keys_dir)
        keys: dict[str, TokenKey] = {}
        for path in sorted(directory.glob("*.pem")) if directory.is_dir() else []:
            try:
                key = import_token_key(path.read_bytes())
            except (OSError, ValueError) as e:
                raise ConfigurationError(f"token key {path.name} is not readable: {e}") from e
            if not key.is_private:
                raise ConfigurationError(f"token key {path.name} is not a private key")
            keys[path.stem] = key
        if not keys:
            raise ConfigurationError(
                f"no token signing key in {directory}: run `broker secrets init`"
            )
        return keys

    def kids(self) -> list[str]:
        return sorted(self._keys)

    def current(self) -> SigningKey:
        kid = max(self._keys)
        key = self._keys[kid]
        return SigningKey(key.as_pem(private=True), kid, signing_alg(key))

    def verification_key(self, kid: str) -> TokenKey | None:
        """The key for ``kid``, re-reading the directory once if another process rotated."""
        key = self._keys.get(kid)
        if key is None and self._looks_like_kid(kid):
            with self._lock:
                try:
                    self._keys = self._read(self._keys_dir)
                except ConfigurationError:
                    return None
                key = self._keys.get(kid)
        return key

    def reload(self) -> None:
        with self._lock:
            self._keys = self._read(self._keys_dir)

    @staticmethod
    def _looks_like_kid(kid: str) -> bool:
        # Never touch the filesystem for arbitrary attacker-chosen strings.
        return kid.startswith("tok-") and len(kid) < 64 and kid.replace("-", "").isalnum()

    def jwks(self) -> dict[str, Any]:
        """The public keys, for ``/.well-known/jwks.json``."""
        keys = []
        for kid in self.kids():
            public = self._keys[kid].as_dict(private=False)
            public.update({"kid": kid, "alg": signing_alg(self._keys[kid]), "use": "sig"})
            keys.append(public)
        return {"keys": keys}
