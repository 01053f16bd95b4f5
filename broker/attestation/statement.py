"""Attestations: the broker states that a subject's document of a type was verified. Pure.

An attestation is a compact JWS (header ``typ: attestation+jwt``, ``alg: Ed25519``, ``kid``)
signed with the broker's attestation key. Its claims say that the (pseudonymised) subject's
document of ``document.type`` was verified by ``document.verified_by_party`` on
``document.verified_at`` by ``document.verification_method``, as that party's system recorded
it, with the document's SHA-256, the exchange id and an expiry. It never holds content: the
recipient learns the fact, not the document.

It is bound to whoever asked: ``aud`` is the requesting system (its client id), ``party`` its
party and, where a verified user asked, ``user`` their identity provider's issuer and subject.
``status`` points at its entry in the broker's status list (:mod:`broker.attestation.status`),
which turns revoked when the consent behind it is withdrawn or the document is found altered.

:func:`verify_attestation` is what ``broker attestation verify`` runs offline: the signature
must verify with one of the given public keys under exactly ``Ed25519``, the claims must be
complete and not expired, and ``aud`` must be the expected system when one is named; anything
else raises :class:`AttestationInvalid`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

from broker.attestation.errors import AttestationInvalid
from broker.attestation.keys import ALGORITHM, AttestationSigner
from broker.auth.jose import MalformedJose, unverified_parts
from broker.core.pseudonym import Pseudonym

TYP: Final = "attestation+jwt"
#: The default of ``BROKER_ATTESTATION_VALIDITY_SECONDS``.
DEFAULT_VALIDITY: Final = dt.timedelta(hours=24)
_SHA256 = re.compile(r"[0-9a-f]{64}")
_REQUIRED: Final = (
    "iss",
    "jti",
    "iat",
    "exp",
    "aud",
    "sub",
    "sub_key_version",
    "exchange_id",
    "document",
)
_DOCUMENT_KEYS: Final = (
    "type",
    "sha256",
    "verified_by_party",
    "verified_by",
    "verified_at",
    "verification_method",
)


@dataclass(frozen=True)
class DocumentFacts:
    """What the provider's system recorded about one verified document (no content)."""

    type: str
    sha256: str
    verified_by_party: str
    verified_by: str
    """The officer (as recorded by the provider's system) who verified it."""
    verified_at: str
    """ISO 8601 date (or date-time) of the verification."""
    verification_method: str


def document_facts(meta: object, verified_by_party: str) -> DocumentFacts:
    """Facts from the documents adapter's ``DocumentMeta`` (any object with its attributes:
    ``type``, ``sha256``, ``verified_by``, ``verified_at``, ``verification_method``)."""
    return DocumentFacts(
        type=str(getattr(meta, "type")),  # noqa: B009 - duck-typed on purpose
        sha256=str(getattr(meta, "sha256")),  # noqa: B009
        verified_by_party=verified_by_party,
        verified_by=str(getattr(meta, "verified_by")),  # noqa: B009
        verified_at=str(getattr(meta, "verified_at")),  # noqa: B009
        verification_method=str(getattr(meta, "verification_method")),  # noqa: B009
    )


@dataclass(frozen=True)
class Audience:
    """Who an attestation is for: the requesting system and, where there is one, the verified
    user behind the request (their identity provider's issuer and subject)."""

    client_id: str
    party_id: str
    user_issuer: str | None = None
    user_subject: str | None = None


@dataclass(frozen=True)
class Attestation:
    jws: str
    claims: Mapping[str, Any]

    @property
    def id(self) -> str:
        return str(self.claims["jti"])

    def to_json(self) -> dict[str, Any]:
        """The documented response and file shape: the JWS and its (readable) claims."""
        return {"attestation": self.jws, "claims": dict(self.claims)}


def issue_attestation(
    signer: AttestationSigner,
    *,
    issuer: str,
    subject: Pseudonym,
    document: DocumentFacts,
    exchange_id: str,
    audience: Audience,
    agreement_id: str,
    now: dt.datetime,
    valid_for: dt.timedelta = DEFAULT_VALIDITY,
    jti: str | None = None,
    status: tuple[int, str] | None = None,
) -> Attestation:
    """Sign an attestation about ``document`` for ``audience``; ``status`` is its ``(idx, uri)``
    in the status list. Raises :class:`AttestationInvalid` for a document digest that is not
    SHA-256 hex or a naive ``now``."""
    if not _SHA256.fullmatch(document.sha256):
        raise AttestationInvalid("the document digest is not a SHA-256 hex digest")
    if now.tzinfo is None:
        raise AttestationInvalid("the attestation time needs a time zone")
    iat = int(now.timestamp())
    claims: dict[str, Any] = {
        "iss": issuer,
        "jti": jti or str(uuid.uuid4()),
        "iat": iat,
        "exp": iat + int(valid_for.total_seconds()),
        "sub": subject.value,
        "sub_key_version": subject.key_version,
        "aud": audience.client_id,
        "party": audience.party_id,
        "agreement_id": agreement_id,
        "exchange_id": exchange_id,
        "document": {
            "type": document.type,
            "sha256": document.sha256,
            "verified_by_party": document.verified_by_party,
            "verified_by": document.verified_by,
            "verified_at": document.verified_at,
            "verification_method": document.verification_method,
        },
    }
    if audience.user_issuer is not None and audience.user_subject is not None:
        claims["user"] = {"iss": audience.user_issuer, "sub": audience.user_subject}
    if status is not None:
        claims["status"] = {"status_list": {"idx": status[0], "uri": status[1]}}
    return Attestation(signer.sign(claims, TYP), claims)


def read_attestation_text(text: str) -> str:
    """The compact JWS from a file: either the JWS itself or ``{"attestation": "<jws>", ...}``.
    Raises :class:`AttestationInvalid`."""
    text = text.strip()
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError as e:
            raise AttestationInvalid("the file is neither a JWS nor attestation JSON") from e
        value = doc.get("attestation") if isinstance(doc, dict) else None
        if not isinstance(value, str):
            raise AttestationInvalid('the JSON has no "attestation" string')
        return value.strip()
    return text


def verify_attestation(
    compact: str,
    keys: Sequence[OKPKey],
    *,
    now: dt.datetime | None = None,
    audience: str | None = None,
) -> dict[str, Any]:
    """Verify ``compact`` with the key whose thumbprint is its ``kid`` (or any of ``keys``
    when it names none); return its claims.

    Raises :class:`AttestationInvalid` when the JWS is malformed, altered, signed by another key
    or algorithm, not an attestation, incomplete, expired at ``now`` (when given), or issued to
    another system than ``audience`` (when given).
    """
    try:
        header, _ = unverified_parts(compact)
    except MalformedJose as e:
        raise AttestationInvalid(f"not a compact JWS: {e}") from e
    if header.get("alg") != ALGORITHM:
        raise AttestationInvalid(f"algorithm {header.get('alg')!r} is not {ALGORITHM}")
    if header.get("typ") != TYP:
        raise AttestationInvalid("not an attestation (typ is not attestation+jwt)")
    kid = header.get("kid")
    candidates = [k for k in keys if kid is None or k.thumbprint() == kid]
    if not candidates:
        raise AttestationInvalid(f"no trusted attestation key has key id {kid!r}")
    claims: dict[str, Any] | None = None
    for key in candidates:
        try:
            verified = jws.deserialize_compact(compact, key, algorithms=[ALGORITHM])
        except (JoseError, ValueError):
            continue
        try:
            loaded = json.loads(verified.payload)
        except ValueError as e:
            raise AttestationInvalid("the payload is not JSON") from e
        if isinstance(loaded, dict):
            claims = loaded
            break
    if claims is None:
        raise AttestationInvalid("the signature does not verify: the attestation was altered")
    _check_claims(claims, now)
    if audience is not None and claims["aud"] != audience:
        raise AttestationInvalid(
            f"the attestation was issued to {claims['aud']!r}, not to {audience!r}"
        )
    return claims


def _check_claims(claims: Mapping[str, Any], now: dt.datetime | None) -> None:
    missing = [name for name in _REQUIRED if name not in claims]
    document = claims.get("document")
    if not isinstance(document, dict):
        missing.append("document")
    else:
        missing += [f"document.{k}" for k in _DOCUMENT_KEYS if k not in document]
        if "content" in document:
            raise AttestationInvalid("an attestation must not carry document content")
    if missing:
        raise AttestationInvalid("the attestation lacks " + ", ".join(sorted(set(missing))))
    exp = claims["exp"]
    if not isinstance(exp, int) or isinstance(exp, bool):
        raise AttestationInvalid("exp is not a number")
    if now is not None and int(now.timestamp()) >= exp:
        raise AttestationInvalid("the attestation has expired")
