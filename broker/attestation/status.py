"""The status of attestations: an IETF Token Status List (draft-ietf-oauth-status-list). Pure.

Every attestation carries ``status: {"status_list": {"idx": N, "uri": URI}}``. The list at
``URI`` is a compact JWS (header ``typ: statuslist+jwt``, signed with the attestation key)
whose claims are ``sub`` (the URI itself), ``iat``, ``exp``, ``ttl`` and
``status_list: {"bits": 1, "lst": ...}``: ``lst`` is the base64url (no padding) of the
ZLIB-compressed byte array in which bit ``idx % 8`` (least significant first) of byte
``idx // 8`` is the status of attestation ``idx``: 0 valid, 1 revoked (the draft's VALID and
INVALID). A relying system fetches the list (or is handed it), checks its signature, then reads
its attestation's bit.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

from broker.attestation.errors import AttestationInvalid
from broker.attestation.keys import ALGORITHM, AttestationSigner
from broker.auth.jose import MalformedJose, unverified_parts

STATUS_LIST_TYP: Final = "statuslist+jwt"
MEDIA_TYPE: Final = "application/statuslist+jwt"
VALID: Final = 0
REVOKED: Final = 1
#: How long a relying system may cache the list (the ``ttl`` claim) and how long it is valid.
TTL_SECONDS: Final = 300


def encode_bits(revoked: Iterable[int], size: int) -> str:
    """``lst``: a 1-bit list of ``size`` entries with the ``revoked`` indexes set, compressed."""
    data = bytearray((max(size, 1) + 7) // 8)
    for idx in revoked:
        if 0 <= idx < size:
            data[idx // 8] |= 1 << (idx % 8)
    packed = zlib.compress(bytes(data), 9)
    return base64.urlsafe_b64encode(packed).rstrip(b"=").decode("ascii")


def decode_bits(lst: str) -> bytes:
    """The byte array of ``lst``. Raises :class:`AttestationInvalid` when it is not one."""
    try:
        packed = base64.urlsafe_b64decode(lst + "=" * (-len(lst) % 4))
        return zlib.decompress(packed)
    except (ValueError, zlib.error) as e:
        raise AttestationInvalid("the status list is not a compressed bit list") from e


def status_list_claims(
    uri: str, revoked: Iterable[int], size: int, now: dt.datetime
) -> dict[str, Any]:
    iat = int(now.timestamp())
    return {
        "sub": uri,
        "iat": iat,
        "exp": iat + TTL_SECONDS,
        "ttl": TTL_SECONDS,
        "status_list": {"bits": 1, "lst": encode_bits(revoked, size)},
    }


def sign_status_list(
    signer: AttestationSigner, uri: str, revoked: Iterable[int], size: int, now: dt.datetime
) -> str:
    """The signed list (``typ: statuslist+jwt``) of ``size`` attestations."""
    return signer.sign(status_list_claims(uri, revoked, size, now), STATUS_LIST_TYP)


@dataclass(frozen=True)
class StatusList:
    uri: str
    bits: bytes

    def status(self, idx: int) -> int:
        """The status of attestation ``idx``. Raises :class:`AttestationInvalid` when the list
        does not hold it."""
        if idx < 0 or idx // 8 >= len(self.bits):
            raise AttestationInvalid(f"the status list has no entry {idx}")
        return (self.bits[idx // 8] >> (idx % 8)) & 1


def status_reference(claims: Mapping[str, Any]) -> tuple[int, str] | None:
    """``(idx, uri)`` of an attestation's ``status`` claim; None when it has none. Raises
    :class:`AttestationInvalid` for a malformed one."""
    status = claims.get("status")
    if status is None:
        return None
    ref = status.get("status_list") if isinstance(status, dict) else None
    idx = ref.get("idx") if isinstance(ref, dict) else None
    uri = ref.get("uri") if isinstance(ref, dict) else None
    if not isinstance(idx, int) or isinstance(idx, bool) or not isinstance(uri, str):
        raise AttestationInvalid("the status claim is not {status_list: {idx, uri}}")
    return idx, uri


def verify_status_list(
    compact: str, keys: Sequence[OKPKey], *, uri: str, now: dt.datetime | None = None
) -> StatusList:
    """Check the list's signature (exactly ``Ed25519``, one of ``keys``), type, subject (must be
    ``uri``, where the attestation says its status is) and expiry. Raises
    :class:`AttestationInvalid` naming what failed."""
    try:
        header, _ = unverified_parts(compact.strip())
    except MalformedJose as e:
        raise AttestationInvalid(f"the status list is not a compact JWS: {e}") from e
    if header.get("alg") != ALGORITHM or header.get("typ") != STATUS_LIST_TYP:
        raise AttestationInvalid("the status list is not an Ed25519 statuslist+jwt")
    kid = header.get("kid")
    claims: Any = None
    for key in (k for k in keys if kid is None or k.thumbprint() == kid):
        try:
            verified = jws.deserialize_compact(compact.strip(), key, algorithms=[ALGORITHM])
            claims = json.loads(verified.payload)
            break
        except (JoseError, ValueError):
            continue
    if not isinstance(claims, dict):
        raise AttestationInvalid("the status list's signature does not verify")
    if claims.get("sub") != uri:
        raise AttestationInvalid(f"the status list is for {claims.get('sub')!r}, not {uri!r}")
    exp = claims.get("exp")
    if now is not None and isinstance(exp, int) and int(now.timestamp()) >= exp:
        raise AttestationInvalid("the status list has expired: fetch a fresh one")
    body = claims.get("status_list")
    if not isinstance(body, dict) or body.get("bits") != 1 or not isinstance(body.get("lst"), str):
        raise AttestationInvalid("the status list has no 1-bit list")
    return StatusList(uri, decode_bits(body["lst"]))
