"""Attestations: signed by the broker's key, verified offline, any alteration refused."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path

import pytest
from joserfc.jwk import OKPKey
from typer.testing import CliRunner

from broker.attestation.errors import AttestationInvalid
from broker.attestation.keys import (
    AttestationSigner,
    load_attestation_key,
    load_or_create_attestation_key,
)
from broker.attestation.statement import (
    DEFAULT_VALIDITY,
    Attestation,
    Audience,
    DocumentFacts,
    issue_attestation,
    verify_attestation,
)
from broker.cli.main import app
from broker.core.pseudonym import Pseudonym

NOW = dt.datetime(2026, 11, 29, 10, 0, tzinfo=dt.UTC)
DOCUMENT = DocumentFacts(
    type="income",
    sha256="5" * 64,
    verified_by_party="calderbridge-city-council",
    verified_by="Priya Marsh",
    verified_at="2026-10-02",
    verification_method="original payslips seen in person",
)
AUDIENCE = Audience("ccc-housing-options", "calderbridge-city-council")


@pytest.fixture
def signer(tmp_path: Path) -> AttestationSigner:
    return load_or_create_attestation_key(tmp_path / "keys")


def public(signer: AttestationSigner) -> list[OKPKey]:
    return [OKPKey.import_key(signer.public_jwk())]


def attest(signer: AttestationSigner) -> Attestation:
    return issue_attestation(
        signer,
        issuer="https://broker.calderbridge.example",
        subject=Pseudonym("ab" * 32, "v1"),
        document=DOCUMENT,
        exchange_id="0190f0a8-0000-7000-8000-000000000001",
        audience=AUDIENCE,
        agreement_id="ISA-PROOF-REUSE",
        now=NOW,
    )


def _segment(data: dict[str, object]) -> str:
    raw = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_sign_and_verify(signer: AttestationSigner) -> None:
    attestation = attest(signer)
    claims = verify_attestation(attestation.jws, public(signer), now=NOW)
    assert claims["document"]["sha256"] == "5" * 64
    assert claims["exchange_id"].startswith("0190f0a8")
    assert "content" not in claims["document"]
    assert claims["exp"] - claims["iat"] == DEFAULT_VALIDITY.total_seconds() == 86400
    assert claims["aud"] == "ccc-housing-options"
    assert claims["party"] == "calderbridge-city-council"
    assert "user" not in claims


def test_the_key_is_created_once_and_reloaded(tmp_path: Path) -> None:
    first = load_or_create_attestation_key(tmp_path)
    again = load_or_create_attestation_key(tmp_path)
    assert first.kid == again.kid == load_attestation_key(tmp_path).kid


def _altered_payload(compact: str) -> str:
    header, payload, signature = compact.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["document"]["type"] = "identity"
    return ".".join([header, _segment(claims), signature])


def _altered_signature(compact: str) -> str:
    header, payload, signature = compact.split(".")
    flipped = "A" if signature[0] != "A" else "B"
    return ".".join([header, payload, flipped + signature[1:]])


def _other_typ(compact: str) -> str:
    _, payload, signature = compact.split(".")
    return ".".join([_segment({"alg": "Ed25519", "typ": "JWT"}), payload, signature])


@pytest.mark.parametrize(
    ("alter", "match"),
    [
        pytest.param(_altered_payload, "altered", id="payload-changed"),
        pytest.param(_altered_signature, "altered", id="signature-changed"),
        pytest.param(_other_typ, "not an attestation", id="typ-changed"),
        pytest.param(lambda c: c.rsplit(".", 1)[0], "not a compact JWS", id="truncated"),
    ],
)
def test_an_altered_attestation_is_refused(
    signer: AttestationSigner, alter: object, match: str
) -> None:
    compact = attest(signer).jws
    with pytest.raises(AttestationInvalid, match=match):
        verify_attestation(alter(compact), public(signer), now=NOW)  # type: ignore[operator]


def test_another_key_and_expiry_are_refused(signer: AttestationSigner, tmp_path: Path) -> None:
    compact = attest(signer).jws
    stranger = load_or_create_attestation_key(tmp_path / "other")
    with pytest.raises(AttestationInvalid, match="no trusted attestation key"):
        verify_attestation(compact, public(stranger), now=NOW)
    with pytest.raises(AttestationInvalid, match="expired"):
        verify_attestation(compact, public(signer), now=NOW + dt.timedelta(days=1))


def test_a_document_digest_must_be_sha256(signer: AttestationSigner) -> None:
    with pytest.raises(AttestationInvalid, match="SHA-256"):
        issue_attestation(
            signer,
            issuer="x",
            subject=Pseudonym("ab" * 32, "v1"),
            document=DocumentFacts("income", "not-a-digest", "p", "o", "2026-01-01", "m"),
            exchange_id="e",
            audience=AUDIENCE,
            agreement_id="a",
            now=NOW,
        )


# --- the CLI -------------------------------------------------------------------------------


def test_cli_verify_with_key_jwks_and_tamper(signer: AttestationSigner, tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    attestation = issue_attestation(
        signer,
        issuer="x",
        subject=Pseudonym("ab" * 32, "v1"),
        document=DOCUMENT,
        exchange_id="e-1",
        audience=AUDIENCE,
        agreement_id="ISA-PROOF-REUSE",
        now=now,
    )
    good = tmp_path / "good.json"
    good.write_text(json.dumps(attestation.to_json()))
    bad = tmp_path / "bad.jws"
    bad.write_text(_altered_payload(attestation.jws))
    pem = tmp_path / "attestation.pub.pem"
    pem.write_bytes(signer.public_pem())
    jwks = tmp_path / "attestation-keys.json"
    jwks.write_text(json.dumps(signer.jwks()))
    runner = CliRunner()

    ok = runner.invoke(app, ["attestation", "verify", str(good), "--key", str(pem), "--no-status"])
    assert ok.exit_code == 0, ok.output
    assert "VALID: income document" in ok.output
    as_json = runner.invoke(
        app, ["attestation", "verify", str(good), "--jwks", str(jwks), "--json", "--no-status"]
    )
    assert as_json.exit_code == 0
    assert json.loads(as_json.output)["claims"]["exchange_id"] == "e-1"
    refused = runner.invoke(app, ["attestation", "verify", str(bad), "--key", str(pem)])
    assert refused.exit_code == 1
    assert "REFUSED" in refused.output
    missing = runner.invoke(
        app, ["attestation", "verify", str(tmp_path / "nope"), "--key", str(pem)]
    )
    assert missing.exit_code == 2
