"""The attestations' status list (IETF Token Status List): encoded, signed, read back; an
attestation bound to its system and user; the CLI names the check that failed."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from joserfc.jwk import OKPKey
from typer.testing import CliRunner

from broker.attestation.errors import AttestationInvalid
from broker.attestation.keys import AttestationSigner, load_or_create_attestation_key
from broker.attestation.statement import (
    Audience,
    DocumentFacts,
    issue_attestation,
    verify_attestation,
)
from broker.attestation.status import (
    REVOKED,
    VALID,
    decode_bits,
    encode_bits,
    sign_status_list,
    status_reference,
    verify_status_list,
)
from broker.cli.main import app
from broker.core.pseudonym import Pseudonym

URI = "https://broker.calderbridge.example/v1/attestations/status-list"
DOCUMENT = DocumentFacts(
    "income", "5" * 64, "calderbridge-city-council", "Priya Marsh", "2026-10-02", "payslips"
)
AUDIENCE = Audience(
    "ccc-housing-options",
    "calderbridge-city-council",
    user_issuer="https://idp.calderbridge.example",
    user_subject="housing-officer-12",
)


@pytest.fixture
def signer(tmp_path: Path) -> AttestationSigner:
    return load_or_create_attestation_key(tmp_path / "keys")


def public(signer: AttestationSigner) -> list[OKPKey]:
    return [OKPKey.import_key(signer.public_jwk())]


def test_the_bits_round_trip_least_significant_first() -> None:
    bits = decode_bits(encode_bits([0, 9, 17], 20))
    assert bits == bytes([0b00000001, 0b00000010, 0b00000010])
    assert decode_bits(encode_bits([], 0)) == b"\x00"
    with pytest.raises(AttestationInvalid, match="compressed"):
        decode_bits("not-zlib")


def test_a_signed_list_is_read_back_and_checked(signer: AttestationSigner, tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    signed = sign_status_list(signer, URI, [3], 10, now)
    found = verify_status_list(signed, public(signer), uri=URI, now=now)
    assert (found.status(3), found.status(4)) == (REVOKED, VALID)
    with pytest.raises(AttestationInvalid, match="no entry"):
        found.status(64)
    with pytest.raises(AttestationInvalid, match="is for"):
        verify_status_list(signed, public(signer), uri=URI + "x", now=now)
    with pytest.raises(AttestationInvalid, match="expired"):
        verify_status_list(signed, public(signer), uri=URI, now=now + dt.timedelta(hours=1))
    stranger = load_or_create_attestation_key(tmp_path / "other")
    forged = sign_status_list(stranger, URI, [], 10, now)
    with pytest.raises(AttestationInvalid, match="signature"):
        verify_status_list(forged, public(signer), uri=URI, now=now)


def test_the_attestation_names_its_system_user_and_status(signer: AttestationSigner) -> None:
    now = dt.datetime.now(dt.UTC)
    attestation = issue_attestation(
        signer,
        issuer="https://broker.calderbridge.example",
        subject=Pseudonym("ab" * 32, "v1"),
        document=DOCUMENT,
        exchange_id="e-1",
        audience=AUDIENCE,
        agreement_id="ISA-PROOF-REUSE",
        now=now,
        status=(7, URI),
    )
    claims = verify_attestation(attestation.jws, public(signer), now=now)
    assert claims["aud"] == "ccc-housing-options"
    assert claims["user"] == {
        "iss": "https://idp.calderbridge.example",
        "sub": "housing-officer-12",
    }
    assert status_reference(claims) == (7, URI)
    verify_attestation(attestation.jws, public(signer), now=now, audience="ccc-housing-options")
    with pytest.raises(AttestationInvalid, match="issued to 'ccc-housing-options'"):
        verify_attestation(attestation.jws, public(signer), now=now, audience="ccc-revenues")


def test_cli_checks_audience_and_status_offline(signer: AttestationSigner, tmp_path: Path) -> None:
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
        status=(2, URI),
    )
    file = tmp_path / "a.json"
    file.write_text(json.dumps(attestation.to_json()))
    pem = tmp_path / "pub.pem"
    pem.write_bytes(signer.public_pem())
    valid_list = tmp_path / "valid.jwt"
    valid_list.write_text(sign_status_list(signer, URI, [1], 8, now))
    revoked_list = tmp_path / "revoked.jwt"
    revoked_list.write_text(sign_status_list(signer, URI, [2], 8, now))
    runner = CliRunner()

    def run(*extra: str) -> tuple[int, str]:
        result = runner.invoke(app, ["attestation", "verify", str(file), "--key", str(pem), *extra])
        return result.exit_code, result.output

    code, out = run("--audience", "ccc-housing-options", "--status-list", str(valid_list))
    assert code == 0, out
    assert "issued to ccc-housing-options" in out
    assert "status valid" in out
    code, out = run("--audience", "ccc-revenues-benefits", "--status-list", str(valid_list))
    assert (code, out.split(":")[0]) == (1, "REFUSED (audience)")
    code, out = run("--status-list", str(revoked_list), "--json")
    assert code == 1
    assert json.loads(out) == {
        "valid": False,
        "check": "status",
        "reason": "the attestation has been revoked",
    }
    code, out = run("--no-status")
    assert code == 0
    assert "status not checked" in out
