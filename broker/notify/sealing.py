"""Keeping a subject's identifier sealed in the outbox until it is delivered.

The outbox payload holds only the subject's keyed pseudonym. When the agreement lets the provider
be told which of its own records was asked about, the identifier must survive a restart without
lying in the database in clear: it is encrypted with AES-256-GCM under a key derived (HKDF-SHA256)
from the pseudonym key, which is kept outside the database. The outbox row's id is the associated
data, so a sealed value cannot be moved to another row. The row keeps the key version; older key
versions stay in the key file after a rotation, so pending rows still open.

The broker's pseudonym of the subject is never sent: it is the value governance searches show,
and a provider given it next to the identifier could map pseudonyms back to people. A notice
carries instead :meth:`SubjectSealer.reference`, an HMAC of the pseudonym under a key derived
for references and the recipient party: stable for one provider (it can tell two notices are
about the same person), different for every provider, and matching nothing in the log.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from broker.core.identifiers import SubjectId, parse_subject
from broker.core.pseudonym import Pseudonym, PseudonymKey, PseudonymKeyring
from broker.pseudonym_keys import load_pseudonym_keys

_INFO = b"broker outbox subject sealing v1"
_REFERENCE_INFO = b"broker notice subject reference v1"
_NONCE_BYTES = 12


class SealingError(ValueError):
    """A sealed identifier could not be opened (unknown key version, or altered)."""


@functools.cache
def _aead(key: PseudonymKey) -> AESGCM:
    """Derived once per key (HKDF and cipher set-up cost far more than sealing a few bytes)."""
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(key.secret)
    return AESGCM(derived)


@functools.cache
def _reference_key(key: PseudonymKey) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_REFERENCE_INFO).derive(
        key.secret
    )


@dataclass(frozen=True)
class SubjectSealer:
    """Seals with the keyring's current key; opens with whichever version sealed."""

    keyring: PseudonymKeyring

    def seal(self, subject: SubjectId, row_id: str) -> tuple[bytes, str]:
        """``(nonce || ciphertext, key version)`` of the identifier, bound to ``row_id``."""
        key = self.keyring.current
        nonce = os.urandom(_NONCE_BYTES)
        plain = json.dumps({"type": subject.type, "value": subject.value}).encode()
        return nonce + _aead(key).encrypt(nonce, plain, row_id.encode()), key.version

    def reference(self, pseudonym: Pseudonym, party_id: str) -> str | None:
        """The recipient ``party_id``'s own reference to the subject of ``pseudonym``
        (``ref_`` + base64url of an HMAC-SHA256), or None when the key version is unknown."""
        key = next((k for k in self.keyring.keys if k.version == pseudonym.key_version), None)
        if key is None:
            return None
        message = f"{party_id}\x00{pseudonym.value}".encode()
        mac = hmac.new(_reference_key(key), message, hashlib.sha256).digest()
        return "ref_" + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def open(self, sealed: bytes, version: str, row_id: str) -> SubjectId:
        """The identifier back. Raises :class:`SealingError`."""
        key = next((k for k in self.keyring.keys if k.version == version), None)
        if key is None:
            raise SealingError(f"no pseudonym key of version {version!r} to open the identifier")
        try:
            plain = _aead(key).decrypt(
                sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], row_id.encode()
            )
        except InvalidTag as e:
            raise SealingError("the sealed identifier does not open (altered or moved)") from e
        value = json.loads(plain)
        return parse_subject(str(value["type"]), str(value["value"]))


def load_sealer(path: Path) -> SubjectSealer:
    """The sealer keyed by the pseudonym key file (either format, read by
    :func:`broker.pseudonym_keys.load_pseudonym_keys`). Raises ConfigurationError."""
    return SubjectSealer(load_pseudonym_keys(path))
