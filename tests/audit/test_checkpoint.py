"""Signed-note checkpoints and the log key files."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broker.audit.checkpoint import (
    generate_log_key,
    load_log_key,
    load_or_generate_log_key,
    load_public_key,
    log_key_path,
    open_checkpoint,
    open_note,
    public_key_path,
    sign_checkpoint,
    sign_note,
    verifier_key,
)
from broker.audit.errors import CheckpointError
from broker.audit.factory import log_origin

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
ORIGIN = "broker.example/audit"
ROOT = hashlib.sha256(b"root").digest()


# The example key and note of the reference implementation, golang.org/x/mod/sumdb/note
# (note_test.go and the package documentation). Ed25519 is deterministic (RFC 8032), so signing
# the same text with the same key must give the published note byte for byte.
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2"
    "pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def test_notes_match_the_go_reference_byte_for_byte() -> None:
    seed = base64.b64decode(GO_SKEY.split("+", 4)[4])
    assert seed[0] == 1  # algorithm byte: Ed25519
    key = Ed25519PrivateKey.from_private_bytes(seed[1:])
    assert verifier_key("PeterNeumann", key.public_key()) == GO_VKEY
    assert sign_note(key, "PeterNeumann", GO_TEXT) == GO_NOTE
    assert open_note(GO_NOTE, key.public_key(), "PeterNeumann") == GO_TEXT
    with pytest.raises(CheckpointError, match="no valid signature"):
        open_note(GO_NOTE.replace("cryptography", "cryptographY"), key.public_key(), "PeterNeumann")


def test_note_layout_follows_c2sp() -> None:
    cp = sign_checkpoint(KEY, ORIGIN, 42, ROOT, 1_795_900_000_000)
    body, _, sigs = cp.note.partition("\n\n")
    assert body.split("\n") == [ORIGIN, "42", base64.b64encode(ROOT).decode(), "time 1795900000000"]
    line = sigs.rstrip("\n")
    dash, name, blob64 = line.split(" ")
    assert (dash, name) == ("\u2014", ORIGIN)
    blob = base64.b64decode(blob64)
    raw = KEY.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert blob[:4] == hashlib.sha256(ORIGIN.encode() + b"\n\x01" + raw).digest()[:4]
    KEY.public_key().verify(blob[4:], (body + "\n").encode())
    assert verifier_key(ORIGIN, KEY.public_key()).startswith(f"{ORIGIN}+{blob[:4].hex()}+")
    served = cp.to_json()
    assert served["key_id"] == blob[:4].hex()
    assert served["time"] == "2026-11-28T21:06:40.000Z"
    assert served["note"] == cp.note


def test_open_checkpoint_round_trips() -> None:
    cp = sign_checkpoint(KEY, ORIGIN, 7, ROOT, 5)
    opened = open_checkpoint(cp.note, KEY.public_key(), ORIGIN)
    assert (opened.tree_size, opened.root, opened.time_ms) == (7, ROOT, 5)


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda n: n.replace("\n7\n", "\n8\n"), "no valid signature"),
        (lambda n: n.replace("\n\n", "\n"), "no signature block"),
        (lambda n: n.replace("\n7\n", "\n07\n"), "not a decimal"),
        (lambda n: n.replace(ORIGIN + "\n", "other.example/log\n", 1), "not 'broker.example"),
        (lambda n: n.split("\n", 3)[0] + "\n7\n!!!\n\n" + n.partition("\n\n")[2], "not base64"),
    ],
    ids=["edited-size", "no-blank-line", "leading-zero", "other-origin", "bad-root"],
)
def test_bad_notes_are_refused(mangle: Callable[[str], str], message: str) -> None:
    cp = sign_checkpoint(KEY, ORIGIN, 7, ROOT, 5)
    with pytest.raises(CheckpointError, match=message):
        open_checkpoint(mangle(cp.note), KEY.public_key(), ORIGIN)


def test_another_key_does_not_verify() -> None:
    cp = sign_checkpoint(KEY, ORIGIN, 7, ROOT, 5)
    with pytest.raises(CheckpointError, match="no valid signature"):
        open_checkpoint(cp.note, Ed25519PrivateKey.generate().public_key())


def test_origin_must_be_a_key_name() -> None:
    with pytest.raises(CheckpointError, match="not a valid note key name"):
        sign_checkpoint(KEY, "has space", 1, ROOT, 0)


def test_log_key_files(tmp_path: Path) -> None:
    path = log_key_path(tmp_path / "keys")
    key = generate_log_key(path)
    assert path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(CheckpointError, match="exists already"):
        generate_log_key(path)
    same = load_or_generate_log_key(path)
    assert same.public_key().public_bytes_raw() == key.public_key().public_bytes_raw()
    assert load_log_key(path).public_key().public_bytes_raw() == key.public_key().public_bytes_raw()
    for source in (path, public_key_path(path)):
        assert load_public_key(source).public_bytes_raw() == key.public_key().public_bytes_raw()
    with pytest.raises(CheckpointError, match="cannot"):
        load_log_key(tmp_path / "missing.pem")


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("http://127.0.0.1:8000", "127.0.0.1:8000/audit"),
        ("https://broker.calderbridge.example/isb", "broker.calderbridge.example/isb/audit"),
    ],
    ids=["local", "with-path"],
)
def test_log_origin_comes_from_the_public_url(url: str, origin: str) -> None:
    assert log_origin(url) == origin
