"""Signed checkpoints (tree heads) in the C2SP signed-note format, with an Ed25519 log key.

A checkpoint note (https://c2sp.org/tlog-checkpoint, https://c2sp.org/signed-note)::

    <origin>
    <tree size>
    <base64 root hash>
    time <unix milliseconds>

    — <origin> <base64(key hash[4] || Ed25519 signature[64])>

The signature covers the text above the blank line, final newline included. The key hash is the
first four bytes of ``SHA-256(<key name> || 0x0A || 0x01 || <32-byte public key>)``; the key name
is the origin. Parsing and checking are pure; the key file helpers are the only I/O.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from broker.audit.entry import format_time_ms
from broker.audit.errors import CheckpointError
from broker.core.merkle import HASH_SIZE

_ED25519 = b"\x01"
_DASH = "\u2014"


@dataclass(frozen=True)
class Checkpoint:
    """A signed tree head: log ``origin`` had ``tree_size`` leaves with ``root`` at ``time_ms``."""

    origin: str
    tree_size: int
    root: bytes
    time_ms: int
    note: str
    """The full signed note, as served and as parties keep it."""

    def signature(self) -> tuple[str, str]:
        """``(key id hex, base64 Ed25519 signature)`` from the note's first signature line."""
        for line in self.note.partition("\n\n")[2].split("\n"):
            parts = line.split(" ")
            if len(parts) == 3 and parts[0] == _DASH:
                blob = base64.b64decode(parts[2])
                return blob[:4].hex(), base64.b64encode(blob[4:]).decode()
        return "", ""

    def to_json(self) -> dict[str, object]:
        """What ``GET /v1/audit/checkpoint`` serves; ``note`` is what parties should keep."""
        key_id, signature = self.signature()
        return {
            "origin": self.origin,
            "tree_size": self.tree_size,
            "root_hash": base64.b64encode(self.root).decode(),
            "root_hash_hex": self.root.hex(),
            "time_ms": self.time_ms,
            "time": format_time_ms(self.time_ms),
            "key_id": key_id,
            "signature": signature,
            "note": self.note,
        }


def key_hash(name: str, public: Ed25519PublicKey) -> bytes:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(name.encode() + b"\n" + _ED25519 + raw).digest()[:4]


def verifier_key(name: str, public: Ed25519PublicKey) -> str:
    """The note verifier key string ``<name>+<hex key hash>+<base64(0x01 || key)>``."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    encoded = base64.b64encode(_ED25519 + raw).decode()
    return f"{name}+{key_hash(name, public).hex()}+{encoded}"


def _body(origin: str, tree_size: int, root: bytes, time_ms: int) -> str:
    return f"{origin}\n{tree_size}\n{base64.b64encode(root).decode()}\ntime {time_ms}\n"


def sign_note(key: Ed25519PrivateKey, name: str, text: str) -> str:
    """A C2SP signed note: ``text`` (ending in a newline), a blank line, one Ed25519 signature."""
    if not text.endswith("\n") or "\n\n" in text:
        raise CheckpointError("note text must end with a newline and hold no blank line")
    signature = key.sign(text.encode())
    blob = base64.b64encode(key_hash(name, key.public_key()) + signature).decode()
    return f"{text}\n{_DASH} {name} {blob}\n"


def open_note(note: str, public: Ed25519PublicKey, name: str) -> str:
    """The text of ``note`` when a signature line by (``name``, ``public``) verifies. Pure.

    Raises :class:`CheckpointError` when the note is malformed or no such signature verifies.
    """
    text, sep, signatures = note.partition("\n\n")
    if not sep or not text:
        raise CheckpointError("note has no signature block")
    text += "\n"
    wanted = key_hash(name, public)
    for line in signatures.split("\n"):
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != _DASH or parts[1] != name:
            continue
        try:
            blob = base64.b64decode(parts[2], validate=True)
        except ValueError:
            continue
        if len(blob) != 4 + 64 or blob[:4] != wanted:
            continue
        try:
            public.verify(blob[4:], text.encode())
        except InvalidSignature:
            continue
        return text
    raise CheckpointError(f"note for {name!r} has no valid signature by the log key")


def sign_checkpoint(
    key: Ed25519PrivateKey, origin: str, tree_size: int, root: bytes, time_ms: int
) -> Checkpoint:
    """Sign a tree head with the log key."""
    if not origin or "\n" in origin or " " in origin or "+" in origin:
        raise CheckpointError(f"log origin {origin!r} is not a valid note key name")
    note = sign_note(key, origin, _body(origin, tree_size, root, time_ms))
    return Checkpoint(origin, tree_size, root, time_ms, note)


def open_checkpoint(note: str, public: Ed25519PublicKey, origin: str | None = None) -> Checkpoint:
    """Parse a checkpoint note and check its signature by ``public``. Pure.

    ``origin`` (when given) must match the note's. Raises :class:`CheckpointError` for a malformed
    note, a wrong origin, or no valid signature by this key.
    """
    head, sep, _ = note.partition("\n\n")
    if not sep or not head:
        raise CheckpointError("checkpoint note has no signature block")
    lines = head.split("\n")
    if len(lines) < 3:
        raise CheckpointError("checkpoint note body is too short")
    name, size_text, root_text = lines[0], lines[1], lines[2]
    if origin is not None and name != origin:
        raise CheckpointError(f"checkpoint is for log {name!r}, not {origin!r}")
    if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise CheckpointError("checkpoint tree size is not a decimal number")
    try:
        root = base64.b64decode(root_text, validate=True)
    except ValueError as e:
        raise CheckpointError("checkpoint root hash is not base64") from e
    if len(root) != HASH_SIZE:
        raise CheckpointError("checkpoint root hash is not 32 bytes")
    time_ms = 0
    for extra in lines[3:]:
        if extra.startswith("time ") and extra[5:].isdigit():
            time_ms = int(extra[5:])
    try:
        open_note(note, public, name)
    except CheckpointError as e:
        raise CheckpointError(
            f"checkpoint for {name!r} has no valid signature by the log key"
        ) from e
    return Checkpoint(name, int(size_text), root, time_ms, note)


# --- the log key (PEM files) -------------------------------------------------------------------


def log_key_path(keys_dir: Path) -> Path:
    """Where the log's private key lives: ``<keys_dir>/log/log-key.pem``."""
    return keys_dir / "log" / "log-key.pem"


def generate_log_key(path: Path) -> Ed25519PrivateKey:
    """Create a new Ed25519 log key (PKCS#8 PEM, mode 0600) and its public key beside it
    (``log-key.pub.pem``). Refuses to overwrite (:class:`CheckpointError`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as e:
        raise CheckpointError(f"log key {path} exists already") from e
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    public_key_path(path).write_bytes(public_pem(key.public_key()))
    return key


def public_key_path(private_path: Path) -> Path:
    return private_path.with_name(private_path.name.removesuffix(".pem") + ".pub.pem")


def public_pem(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_log_key(path: Path) -> Ed25519PrivateKey:
    """Read the log's private key. Raises :class:`CheckpointError` when missing or not Ed25519."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as e:
        raise CheckpointError(f"cannot load log key {path}: {e}") from e
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointError(f"log key {path} is not an Ed25519 key")
    return key


def load_or_generate_log_key(path: Path) -> Ed25519PrivateKey:
    """The key at ``path``, created first when absent (first start of a new log)."""
    if path.exists():
        return load_log_key(path)
    return generate_log_key(path)


def load_public_key(path: Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file holding either the public or the private key."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"cannot read log key {path}: {e}") from e
    try:
        if b"PRIVATE KEY" in data:
            private = serialization.load_pem_private_key(data, password=None)
            if isinstance(private, Ed25519PrivateKey):
                return private.public_key()
            raise CheckpointError(f"log key {path} is not an Ed25519 key")
        public = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"cannot load log key {path}: {e}") from e
    if not isinstance(public, Ed25519PublicKey):
        raise CheckpointError(f"log key {path} is not an Ed25519 key")
    return public
