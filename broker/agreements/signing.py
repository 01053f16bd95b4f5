"""Detached JWS signatures over canonical document content, and the trust store snapshot. Pure.

A signature is a JWS compact serialisation with a detached payload (``header..signature``, RFC
7515 appendix F) whose payload is the RFC 8785 canonical content of the document. The protected
header holds ``alg`` and ``kid``; ``kid`` is the RFC 7638 thumbprint of the signer's public key.

Algorithms: ``Ed25519`` (RFC 9864, the fully specified EdDSA) for OKP keys, ``ES256`` for P-256
keys. Signatures made elsewhere with the polymorphic ``EdDSA`` name are accepted too; joserfc warns
about that name (RFC 9864 deprecates it), and we accept it deliberately, only for verification,
inside a warnings filter scoped to that one call. Nothing else is accepted (no ``none``, no HMAC).

A signature counts only when its key is in the trust store *for the party it is filed under*: a
valid signature by another party's key is refused.
"""

from __future__ import annotations

import base64
import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from joserfc import jws
from joserfc.errors import BadSignatureError, JoseError, SecurityWarning
from joserfc.jwk import ECKey, OKPKey

from broker.agreements.errors import UnusableKeyError

SIGNING_ALGORITHMS = frozenset({"Ed25519", "ES256"})
VERIFY_ALGORITHMS = frozenset({"Ed25519", "ES256", "EdDSA"})

PartyKey = OKPKey | ECKey
"""A party's private JOSE key for signing agreements (its kid is the RFC 7638 thumbprint). Not
``broker.core.signing_key.SigningKey``: that one carries a PEM and a fixed kid for the broker's
own token and bundle keys; a party key is used as the JOSE object the detached JWS needs."""


@dataclass(frozen=True)
class TrustedKey:
    """A party's public key as held in the trust store."""

    kid: str
    party_id: str
    jwk: Mapping[str, Any]


@dataclass(frozen=True)
class TrustSnapshot:
    """The trust store at one moment: public keys by kid (thumbprint)."""

    keys: Mapping[str, TrustedKey] = field(default_factory=dict)
    refused: Mapping[str, str] = field(default_factory=dict)
    """Kids that must not count, with the reason (e.g. demo keys outside demo mode)."""

    @classmethod
    def of(cls, keys: list[TrustedKey]) -> TrustSnapshot:
        return cls({k.kid: k for k in keys})


@dataclass(frozen=True)
class SignatureCheck:
    """The outcome of checking one party's signature."""

    party_id: str
    kid: str | None
    valid: bool
    reason: str


def load_private_key(pem: bytes) -> PartyKey:
    """A private Ed25519 or P-256 key from PEM; :class:`UnusableKeyError` for anything else."""
    for loader in (OKPKey.import_key, ECKey.import_key):
        try:
            key = loader(pem)
        except (JoseError, ValueError, TypeError):
            continue
        if not key.is_private:
            raise UnusableKeyError("the key file holds a public key; signing needs the private key")
        _algorithm_for(key)
        return key
    raise UnusableKeyError("the key file is not an Ed25519 or P-256 private key in PEM form")


def _algorithm_for(key: PartyKey) -> str:
    if isinstance(key, OKPKey) and key.curve_name == "Ed25519":
        return "Ed25519"
    if isinstance(key, ECKey) and key.curve_name == "P-256":
        return "ES256"
    raise UnusableKeyError("only Ed25519 and P-256 keys are accepted")


def public_jwk(key: PartyKey) -> dict[str, Any]:
    """The public JWK with ``kid`` (thumbprint), ``alg`` and ``use``."""
    jwk: dict[str, Any] = dict(key.as_dict(private=False))
    jwk.update({"kid": key.thumbprint(), "alg": _algorithm_for(key), "use": "sig"})
    return jwk


def thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 thumbprint of a public JWK. Raises :class:`UnusableKeyError` for unusable keys."""
    return _public_key(jwk).thumbprint()


def _public_key(jwk: Mapping[str, Any]) -> PartyKey:
    members = {k: v for k, v in jwk.items() if k in {"kty", "crv", "x", "y"}}
    try:
        if members.get("kty") == "OKP":
            okp = OKPKey.import_key(members)
            _algorithm_for(okp)
            return okp
        if members.get("kty") == "EC":
            ec = ECKey.import_key(members)
            _algorithm_for(ec)
            return ec
    except (JoseError, ValueError, TypeError) as e:
        raise UnusableKeyError(f"not a usable public key: {e}") from e
    raise UnusableKeyError(
        f"key type {members.get('kty')!r} is not accepted (OKP Ed25519 or EC P-256)"
    )


def sign_detached(content: bytes, key: PartyKey) -> str:
    """A detached compact JWS (``header..signature``) over ``content``."""
    alg = _algorithm_for(key)
    compact = jws.serialize_compact(
        {"alg": alg, "kid": key.thumbprint()}, content, key, algorithms=[alg]
    )
    return jws.detach_content(compact)


def _header(token: str) -> dict[str, Any]:
    segment = token.split(".")[0]
    raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    header = json.loads(raw)
    if not isinstance(header, dict):
        raise ValueError("header is not an object")
    return header


def verify_detached(
    content: bytes, token: str, party_id: str, trust: TrustSnapshot
) -> SignatureCheck:
    """Check that ``token`` is ``party_id``'s valid signature over ``content``. Never raises."""
    parts = token.split(".")
    if len(parts) != 3 or parts[1] != "":
        return SignatureCheck(party_id, None, False, "not a detached JWS (header..signature)")
    try:
        header = _header(token)
    except (ValueError, UnicodeDecodeError) as e:
        return SignatureCheck(party_id, None, False, f"unreadable signature header: {e}")
    kid = header.get("kid")
    alg = header.get("alg")
    if not isinstance(kid, str):
        return SignatureCheck(party_id, None, False, "the signature names no key (kid)")
    if alg not in VERIFY_ALGORITHMS:
        return SignatureCheck(party_id, kid, False, f"algorithm {alg!r} is not accepted")
    if kid in trust.refused:
        return SignatureCheck(party_id, kid, False, f"refused: key {kid} {trust.refused[kid]}")
    trusted = trust.keys.get(kid)
    if trusted is None:
        return SignatureCheck(party_id, kid, False, f"key {kid} is not in the trust store")
    if trusted.party_id != party_id:
        return SignatureCheck(
            party_id,
            kid,
            False,
            f"refused: key {kid} belongs to {trusted.party_id!r}, not to {party_id!r}",
        )
    try:
        key = _public_key(trusted.jwk)
        with warnings.catch_warnings():
            if alg == "EdDSA":
                # Deliberate: accepted for verification only, see the module docstring.
                warnings.simplefilter("ignore", SecurityWarning)
            jws.deserialize_compact(token, key, algorithms=[alg], payload=content)
    except BadSignatureError:
        return SignatureCheck(party_id, kid, False, "the signature no longer matches the content")
    except (JoseError, UnusableKeyError, ValueError) as e:
        return SignatureCheck(
            party_id, kid, False, f"the signature cannot be checked ({type(e).__name__})"
        )
    return SignatureCheck(party_id, kid, True, "valid")
