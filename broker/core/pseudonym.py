"""Keyed pseudonyms of people: HMAC-SHA256 of a normalised (identifier type, value) pair.

An unkeyed hash of an NHS number can be reversed by hashing all 10**9 candidates, so the log only
ever holds ``HMAC-SHA256(key, type || 0x00 || value)`` with the key kept outside the database and
its version recorded beside the pseudonym.

Key file format (text, one key per line, the last line is the current key)::

    # comments and blank lines are ignored
    v1:<base64url key of at least 32 bytes>
    v2:<base64url key>

Older lines stay so that pseudonyms made before a rotation can still be searched for
(:meth:`PseudonymKeyring.all_pseudonyms`). The older format, one line of hex as ``broker secrets
init`` once wrote it, is read as key version ``v1`` (:func:`parse_pseudonym_keys`). Everything here
is values in, values out: :mod:`broker.pseudonym_keys` reads and writes the file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import unicodedata
from dataclasses import dataclass

from broker.core.errors import ConfigurationError, InvalidInput

#: The shortest key accepted, in bytes (the HMAC-SHA256 output size).
MIN_KEY_BYTES = 32
_VERSION = re.compile(r"^[A-Za-z0-9._-]{1,32}$")
_DIGITS_ONLY = frozenset({"nhs_number", "chi_number", "uprn"})


@dataclass(frozen=True)
class Pseudonym:
    """A subject pseudonym as the log stores it."""

    value: str
    """Lowercase hex HMAC-SHA256."""
    key_version: str


@dataclass(frozen=True, repr=False)
class PseudonymKey:
    """One versioned HMAC key. ``repr`` never shows the secret."""

    version: str
    secret: bytes

    def __post_init__(self) -> None:
        if len(self.secret) < MIN_KEY_BYTES:
            raise ConfigurationError(
                f"pseudonym key {self.version!r} is {len(self.secret)} bytes;"
                f" at least {MIN_KEY_BYTES} are required"
            )
        if not _VERSION.match(self.version):
            raise ConfigurationError(f"pseudonym key version {self.version!r} is not valid")

    def __repr__(self) -> str:
        return f"PseudonymKey(version={self.version!r})"


def normalise_identifier(id_type: str, value: str) -> tuple[str, str]:
    """The canonical ``(type, value)`` pair that is hashed.

    Type: trimmed, lowercase, ``-`` and spaces become ``_``. Value: NFC, trimmed; for numeric
    identifiers (NHS number, CHI, UPRN) spaces and hyphens are dropped and digits required; other
    identifiers are case-folded. Raises :class:`InvalidInput` for an empty or malformed identifier.
    """
    t = re.sub(r"[\s-]+", "_", id_type.strip().lower())
    v = unicodedata.normalize("NFC", value).strip()
    if not t or not v:
        raise InvalidInput("a subject identifier needs a type and a value")
    if t in _DIGITS_ONLY:
        v = re.sub(r"[\s-]+", "", v)
        if not v.isascii() or not v.isdigit():
            raise InvalidInput(f"a {t} identifier must be digits")
    else:
        v = v.casefold()
    return t, v


def pseudonymise(key: PseudonymKey, id_type: str, value: str) -> Pseudonym:
    """HMAC-SHA256 of the normalised identifier under ``key``."""
    t, v = normalise_identifier(id_type, value)
    mac = hmac.new(key.secret, t.encode() + b"\x00" + v.encode(), hashlib.sha256)
    return Pseudonym(mac.hexdigest(), key.version)


@dataclass(frozen=True)
class PseudonymKeyring:
    """Every known key version; the last one makes new pseudonyms."""

    keys: tuple[PseudonymKey, ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise ConfigurationError("the pseudonym key file holds no key")
        versions = [k.version for k in self.keys]
        if len(set(versions)) != len(versions):
            raise ConfigurationError("the pseudonym key file repeats a key version")

    @property
    def current(self) -> PseudonymKey:
        return self.keys[-1]

    def pseudonymise(self, id_type: str, value: str) -> Pseudonym:
        """The pseudonym under the current key."""
        return pseudonymise(self.current, id_type, value)

    def all_pseudonyms(self, id_type: str, value: str) -> list[Pseudonym]:
        """The pseudonym under every key version (for searching across rotations)."""
        return [pseudonymise(k, id_type, value) for k in self.keys]


def parse_key_file(text: str) -> PseudonymKeyring:
    """Parse the key file format above. Raises :class:`ConfigurationError` on any bad line."""
    keys: list[PseudonymKey] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        version, sep, encoded = line.partition(":")
        if not sep:
            raise ConfigurationError(f"pseudonym key file line {number}: expected VERSION:KEY")
        try:
            secret = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except ValueError as e:
            raise ConfigurationError(f"pseudonym key file line {number}: not base64url") from e
        keys.append(PseudonymKey(version.strip(), secret))
    return PseudonymKeyring(tuple(keys))


#: The key version given to the one secret of the older, hex-only key file format.
LEGACY_VERSION = "v1"


def parse_pseudonym_keys(text: str) -> PseudonymKeyring:
    """Parse a key file in either format: the versioned one above, or the older one of a single
    line of hex (a line that is not hex is taken as its UTF-8 bytes), read as key version
    :data:`LEGACY_VERSION`. Raises :class:`ConfigurationError`."""
    lines = [line for line in (raw.strip() for raw in text.splitlines()) if line]
    lines = [line for line in lines if not line.startswith("#")]
    if len(lines) == 1 and ":" not in lines[0]:
        try:
            secret = bytes.fromhex(lines[0])
        except ValueError:
            secret = lines[0].encode("utf-8")
        return PseudonymKeyring((PseudonymKey(LEGACY_VERSION, secret),))
    return parse_key_file(text)


def format_key(key: PseudonymKey) -> str:
    """One key file line for ``key``."""
    return f"{key.version}:{base64.urlsafe_b64encode(key.secret).decode().rstrip('=')}"


def generate_key(version: str = "v1") -> PseudonymKey:
    """A fresh random 32-byte key."""
    return PseudonymKey(version, secrets.token_bytes(MIN_KEY_BYTES))
