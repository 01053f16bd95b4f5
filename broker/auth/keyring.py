"""The broker's own token-signing keys, kept as PEM files outside the database.

Layout: ``<keys_dir>/token/<kid>.pem`` (Ed25519 private keys). Key ids sort by creation time,
so the newest file signs and every file present verifies. Rotation adds a newer key; tokens
signed with the older one stay valid until it is retired (removed), which an operator does once
the longest token lifetime has passed. Processes sharing the directory pick up a new key the
first time they meet its ``kid``.

The keys are Ed25519, published and used under the JWS name ``EdDSA`` (RFC 8037): the name
PyJWT, authlib, jose4j, Nimbus and most other libraries know. RFC 9864's fully specified name
``Ed25519`` (which tokens carried before) is still accepted when the broker verifies its own
tokens, so tokens issued before an upgrade stay valid until they expire.
"""

from __future__ import annotations

import os
import secrets
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from joserfc.jwk import OKPKey

from broker.core.errors import ConfigurationError, NotFound
from broker.core.signing_key import SigningKey

TOKEN_KEY_ALG = "EdDSA"  # noqa: S105 - an algorithm name (RFC 8037), as clients expect
#: What the broker accepts in its own tokens' header: ``Ed25519`` is the same signature under
#: RFC 9864's name, which tokens issued before ``EdDSA`` was published carry.
TOKEN_VERIFY_ALGS: frozenset[str] = frozenset({TOKEN_KEY_ALG, "Ed25519"})


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
    key = OKPKey.generate_key("Ed25519", private=True)
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

    def __init__(self, keys_dir: Path, keys: dict[str, OKPKey]) -> None:
        self._keys_dir = keys_dir
        self._keys = keys
        self._lock = threading.Lock()

    @classmethod
    def load(cls, keys_dir: Path) -> KeyRing:
        """Read every key. Raises ConfigurationError when there is none or one is unreadable."""
        return cls(keys_dir, cls._read(keys_dir))

    @staticmethod
    def _read(keys_dir: Path) -> dict[str, OKPKey]:
        directory = token_keys_dir(keys_dir)
        keys: dict[str, OKPKey] = {}
        for path in sorted(directory.glob("*.pem")) if directory.is_dir() else []:
            try:
                key = OKPKey.import_key(path.read_bytes())
            except Exception as e:  # joserfc raises several types for bad PEM
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
        return SigningKey(self._keys[kid].as_pem(private=True), kid, TOKEN_KEY_ALG)

    def verification_key(self, kid: str) -> OKPKey | None:
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
            public.update({"kid": kid, "alg": TOKEN_KEY_ALG, "use": "sig"})
            keys.append(public)
        return {"keys": keys}
