from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc import jws
from joserfc.jwk import ECKey, RSAKey

from broker.core.signing_key import SigningKey
from broker.policy.bundle import (
    DATA,
    MANIFEST,
    SIGNATURES,
    VerificationKey,
    build_bundle,
    file_hash,
    load_bundle,
    pack,
    unpack,
)
from broker.policy.errors import BundleError
from tests.policy.fixtures import policy_modules


def _rsa() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _pems(key)


def _ec() -> tuple[bytes, bytes]:
    return _pems(ec.generate_private_key(ec.SECP256R1()))


def _pems(key: Any) -> tuple[bytes, bytes]:
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


@pytest.fixture(scope="module")
def rsa_pair() -> tuple[bytes, bytes]:
    return _rsa()


@pytest.fixture(scope="module")
def signed(rsa_pair: tuple[bytes, bytes], demo_data: dict[str, Any]) -> bytes:
    _, blob = build_bundle(policy_modules(), demo_data, SigningKey(rsa_pair[0], "broker"))
    return blob


def test_go_hash_sorts_keys_and_escapes_like_go() -> None:
    # hash.go: keys sorted, compact, no HTML escaping, U+2028 escaped, numbers as written.
    raw = b'{"b": 1.50, "a": ["<&>", "\xe2\x80\xa8", true, null]}'
    expected = '{"a":["<&>","\\u2028",true,null],"b":1.50}'
    import hashlib

    assert file_hash(DATA, raw) == hashlib.sha256(expected.encode()).hexdigest()
    assert file_hash("policies/x.rego", raw) == hashlib.sha256(raw).hexdigest()


def test_build_is_deterministic(demo_data: dict[str, Any]) -> None:
    a = build_bundle(policy_modules(), demo_data)[1]
    b = build_bundle(policy_modules(), demo_data)[1]
    assert a == b


def test_manifest_revision_and_roots(signed: bytes, demo_revision: str) -> None:
    manifest = json.loads(unpack(signed)[MANIFEST])
    assert manifest["revision"] == demo_revision
    assert manifest["roots"] == ["sharing", "isa"]
    assert not any(name.endswith("_test.rego") for name in unpack(signed))


@pytest.mark.parametrize("algorithm", ["RS256", "PS256", "ES256"])
def test_signature_verifies_with_an_independent_jws_library(
    algorithm: str, demo_data: dict[str, Any]
) -> None:
    private, public = _ec() if algorithm == "ES256" else _rsa()
    _, blob = build_bundle(policy_modules(), demo_data, SigningKey(private, "k1", algorithm))
    files = unpack(blob)
    token = json.loads(files[SIGNATURES])["signatures"]
    assert len(token) == 1
    key = ECKey.import_key(public) if algorithm == "ES256" else RSAKey.import_key(public)
    obj = jws.deserialize_compact(token[0], key, algorithms=[algorithm])
    assert obj.headers()["kid"] == "k1"
    payload = json.loads(obj.payload)
    listed = {f["name"]: f for f in payload["files"]}
    assert set(listed) == set(files) - {SIGNATURES}
    for name, content in files.items():
        if name != SIGNATURES:
            assert listed[name]["algorithm"] == "SHA-256"
            assert listed[name]["hash"] == file_hash(name, content)
    loaded = load_bundle(blob, {"k1": VerificationKey(public, algorithm)})
    assert loaded.signed_by == "k1"


def test_changing_any_byte_of_any_file_is_refused(
    signed: bytes, rsa_pair: tuple[bytes, bytes]
) -> None:
    keys = {"broker": VerificationKey(rsa_pair[1])}
    files = unpack(signed)
    refused = 0
    for name, content in files.items():
        # Every byte of the small files; a spread of positions in the large ones.
        step = 1 if len(content) < 600 else max(1, len(content) // 150)
        for i in range(0, len(content), step):
            tampered = dict(files)
            tampered[name] = content[:i] + bytes([content[i] ^ 0x01]) + content[i + 1 :]
            with pytest.raises(BundleError):
                load_bundle(pack(tampered), keys)
            refused += 1
    assert refused > 500


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("drop-signatures", "not signed"),
        ("extra-file", "not included in the bundle signature"),
        ("missing-file", "missing from the bundle"),
        ("unknown-kid", "not trusted"),
    ],
)
def test_bad_signatures_are_refused(
    signed: bytes, rsa_pair: tuple[bytes, bytes], change: str, message: str
) -> None:
    keys = {"broker": VerificationKey(rsa_pair[1])}
    files = unpack(signed)
    if change == "drop-signatures":
        del files[SIGNATURES]
    elif change == "extra-file":
        files["policies/extra.rego"] = b"package sharing\n"
    elif change == "missing-file":
        del files["policies/sharing.rego"]
    else:
        keys = {"other": keys["broker"]}
    with pytest.raises(BundleError, match=message):
        load_bundle(pack(files), keys)


def test_signature_by_another_key_is_refused(signed: bytes) -> None:
    _, other_public = _rsa()
    with pytest.raises(BundleError, match="does not verify"):
        load_bundle(signed, {"broker": VerificationKey(other_public)})


def test_eddsa_is_not_offered(demo_data: dict[str, Any]) -> None:
    with pytest.raises(BundleError, match="not one OPA verifies"):
        build_bundle(policy_modules(), demo_data, SigningKey(_rsa()[0], "k", "EdDSA"))


def test_not_a_tar_is_refused() -> None:
    with pytest.raises(BundleError, match="not a gzipped tar"):
        load_bundle(b"hello", {})


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_truncated_or_garbled_bundles_raise_only_bundle_error(
    signed: bytes, rsa_pair: tuple[bytes, bytes], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(min_value=0, max_value=len(signed) - 1))
    blob = signed[:cut] + data.draw(st.binary(max_size=64))
    with pytest.raises(BundleError):
        load_bundle(blob, {"broker": VerificationKey(rsa_pair[1])})
