"""Detached JWS: accepted algorithms, the party binding of keys, and what is refused."""

from __future__ import annotations

import base64
import json
import warnings

import pytest
from joserfc import jws
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, OKPKey, RSAKey

from broker.agreements.errors import UnusableKeyError
from broker.agreements.signing import (
    TrustedKey,
    TrustSnapshot,
    load_private_key,
    public_jwk,
    sign_detached,
    verify_detached,
)

CONTENT = b'{"id":"ISA-X","version":1}'


def _trust(party: str, *keys: OKPKey | ECKey) -> TrustSnapshot:
    return TrustSnapshot.of([TrustedKey(k.thumbprint(), party, public_jwk(k)) for k in keys])


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(OKPKey.generate_key("Ed25519"), id="Ed25519"),
        pytest.param(ECKey.generate_key("P-256"), id="ES256"),
    ],
)
def test_sign_and_verify(key: OKPKey | ECKey) -> None:
    token = sign_detached(CONTENT, key)
    header, payload, _ = token.split(".")
    assert payload == ""
    assert json.loads(base64.urlsafe_b64decode(header + "==="))["kid"] == key.thumbprint()
    check = verify_detached(CONTENT, token, "R9Z", _trust("R9Z", key))
    assert check.valid, check.reason
    tampered = verify_detached(CONTENT + b" ", token, "R9Z", _trust("R9Z", key))
    assert not tampered.valid
    assert "no longer matches the content" in tampered.reason


def test_polymorphic_eddsa_name_is_accepted_without_leaking_a_warning() -> None:
    key = OKPKey.generate_key("Ed25519")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        compact = jws.serialize_compact(
            {"alg": "EdDSA", "kid": key.thumbprint()}, CONTENT, key, algorithms=["EdDSA"]
        )
    token = jws.detach_content(compact)
    # filterwarnings=error: a SecurityWarning escaping verify_detached would fail this test.
    assert verify_detached(CONTENT, token, "R9Z", _trust("R9Z", key)).valid


def _forge(header: dict[str, str], signature: bytes = b"x") -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return f"{b64(json.dumps(header).encode())}..{b64(signature)}"


@pytest.mark.parametrize(
    ("token_of", "reason"),
    [
        pytest.param(
            lambda k: _forge({"alg": "none", "kid": k.thumbprint()}),
            "algorithm 'none' is not accepted",
            id="alg-none",
        ),
        pytest.param(
            lambda k: _forge({"alg": "HS256", "kid": k.thumbprint()}),
            "algorithm 'HS256' is not accepted",
            id="alg-hmac",
        ),
        pytest.param(lambda k: _forge({"alg": "Ed25519"}), "names no key", id="no-kid"),
        pytest.param(
            lambda k: _forge({"alg": "Ed25519", "kid": "someone-else"}),
            "not in the trust store",
            id="unknown-kid",
        ),
        pytest.param(
            lambda k: jws.serialize_compact(
                {"alg": "Ed25519", "kid": k.thumbprint()}, CONTENT, k, algorithms=["Ed25519"]
            ),
            "not a detached JWS",
            id="attached-payload",
        ),
        pytest.param(lambda k: "garbage", "not a detached JWS", id="garbage"),
        pytest.param(lambda k: "!!!..x", "unreadable signature header", id="bad-header"),
    ],
)
def test_refused_tokens(token_of: object, reason: str) -> None:
    key = OKPKey.generate_key("Ed25519")
    assert callable(token_of)
    check = verify_detached(CONTENT, token_of(key), "R9Z", _trust("R9Z", key))
    assert not check.valid
    assert reason in check.reason


def test_key_of_another_party_is_refused() -> None:
    r9z, police = OKPKey.generate_key("Ed25519"), OKPKey.generate_key("Ed25519")
    trust = TrustSnapshot.of(
        [
            TrustedKey(r9z.thumbprint(), "R9Z", public_jwk(r9z)),
            TrustedKey(police.thumbprint(), "west-calder-police", public_jwk(police)),
        ]
    )
    check = verify_detached(CONTENT, sign_detached(CONTENT, police), "R9Z", trust)
    assert not check.valid
    assert "belongs to 'west-calder-police', not to 'R9Z'" in check.reason


@pytest.mark.parametrize(
    ("pem", "message"),
    [
        pytest.param(
            OKPKey.generate_key("Ed25519").as_pem(private=False), "public key", id="public-key"
        ),
        pytest.param(
            RSAKey.generate_key(2048).as_pem(private=True), "not an Ed25519 or P-256", id="rsa"
        ),
        pytest.param(
            ECKey.generate_key("P-384").as_pem(private=True), "only Ed25519 and P-256", id="p384"
        ),
        pytest.param(b"not a key", "not an Ed25519 or P-256", id="garbage"),
    ],
)
def test_unusable_signing_keys(pem: bytes, message: str) -> None:
    with pytest.raises(UnusableKeyError, match=message):
        load_private_key(pem)


def test_algorithm_that_does_not_fit_the_key_cannot_be_checked() -> None:
    key = OKPKey.generate_key("Ed25519")
    token = sign_detached(CONTENT, key)
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "==="))
    header["alg"] = "ES256"
    forged = (
        base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
        + ".."
        + token.split(".")[2]
    )
    check = verify_detached(CONTENT, forged, "R9Z", _trust("R9Z", key))
    assert not check.valid
    assert "cannot be checked" in check.reason
