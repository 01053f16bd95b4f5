"""Housing Options reuses proof documents Revenues and Benefits verified, with the citizen's
consent: consent recorded, attestations received and verified offline, consent withdrawn, the
next request refused; and the citizen's access report shows the reuse."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from broker.cli.main import app
from tests.exchange.helpers import DAWN, post, record_consent
from tests.support import LiveBroker, demo_key

ATTEST = {
    "agreement_id": "ISA-PROOF-REUSE",
    "purpose": "homelessness-assessment",
    "dataset": "ccc.proof-documents",
    "subject": DAWN,
    "mode": "attest",
    "requested_by": {"user_id": "housing-officer-12", "role": "housing-options-officer"},
}


def call(broker: LiveBroker, client_id: str, method: str, path: str, **kwargs: Any) -> Any:
    token = broker.token(client_id, demo_key(client_id))
    return broker.http.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)


def test_reuse_with_consent_then_withdrawal(broker: LiveBroker, tmp_path: Path) -> None:
    refused = post(broker, "ccc-housing-options", ATTEST)
    assert refused.status_code == 403
    assert any("consent" in r for r in refused.json()["reasons"])

    consent = record_consent(broker, "ccc.proof-documents")
    assert consent.status_code == 201, consent.text

    answer = post(broker, "ccc-housing-options", ATTEST)
    assert answer.status_code == 200, answer.text
    attestations = answer.json()["attestations"]
    assert len(attestations) == 3  # identity, income, residence
    assert "record" not in answer.json()
    assert "content" not in json.dumps(attestations)

    # Checked offline against the broker's published attestation key.
    keys = broker.http.get("/.well-known/attestation-keys.json").json()
    (tmp_path / "keys.json").write_text(json.dumps(keys))
    (tmp_path / "a.json").write_text(json.dumps(attestations[0]))
    runner = CliRunner()
    ok = runner.invoke(
        app,
        ["attestation", "verify", str(tmp_path / "a.json"), "--jwks", str(tmp_path / "keys.json")],
    )
    assert ok.exit_code == 0, ok.output
    altered = dict(attestations[0])
    altered["attestation"] = altered["attestation"][:-6] + "AAAAAA"
    (tmp_path / "b.json").write_text(json.dumps(altered))
    bad = runner.invoke(
        app,
        ["attestation", "verify", str(tmp_path / "b.json"), "--jwks", str(tmp_path / "keys.json")],
    )
    assert bad.exit_code == 1

    withdrawn = call(
        broker, "ccc-revenues-benefits", "POST", f"/v1/consents/{consent.json()['id']}/withdraw"
    )
    assert withdrawn.status_code == 200, withdrawn.text
    after = post(broker, "ccc-housing-options", ATTEST)
    assert after.status_code == 403
    assert any("withdrawn" in r for r in after.json()["reasons"])

    # These exchanges named Dawn by her council person id: the council's officers answer her
    # subject access request (her own report through the portal covers her verified NHS number).
    report = call(
        broker,
        "ccc-governance",
        "GET",
        "/v1/subjects/access-report",
        params={"subject_type": "person_id", "subject_value": "P0000008"},
    )
    assert report.status_code == 200, report.text
    assert any(e["dataset"] == "ccc.proof-documents" for e in report.json()["exchanges"])


def test_a_document_that_no_longer_matches_its_hash_is_refused_and_logged(
    broker: LiveBroker, demo_sources: Any
) -> None:
    from demo.sources.subjects import BENEFITS_CLAIMANT_DOCUMENTS
    from tests.exchange.helpers import entry

    record_consent(broker, "ccc.proof-documents")
    digest = BENEFITS_CLAIMANT_DOCUMENTS["identity"]
    path = demo_sources.root / "documents" / "objects" / digest[:2] / digest
    original = path.read_bytes()
    path.write_bytes(original + b" altered after verification")
    try:
        body = {**ATTEST, "mode": "fetch", "fields": ["document.type", "document.content"]}
        response = post(broker, "ccc-housing-options", body)
    finally:
        path.write_bytes(original)
    assert response.status_code == 502, response.text
    assert "record" not in response.json()
    assert entry(broker, response.json()["exchange_id"])["source_outcome"] == "error"


def test_the_document_itself_is_streamed_with_its_hash_checked(
    broker: LiveBroker, demo_sources: Any
) -> None:
    import base64
    import hashlib

    from broker.audit.entry import check_released_record
    from demo.sources.subjects import BENEFITS_CLAIMANT_DOCUMENTS
    from tests.exchange.helpers import entry

    record_consent(broker, "ccc.proof-documents")
    digest = BENEFITS_CLAIMANT_DOCUMENTS["income"]
    body = {**ATTEST, "mode": "document", "document_sha256": digest}
    response = post(broker, "ccc-housing-options", body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    assert hashlib.sha256(response.content).hexdigest() == digest
    exchange_id = response.headers["x-exchange-id"]
    receipt = json.loads(base64.urlsafe_b64decode(response.headers["x-receipt"]))
    logged = entry(broker, exchange_id)
    assert logged["source_outcome"] == "ok"
    salt = base64.b64decode(receipt["record_salt"])
    assert check_released_record({"document.sha256": digest}, salt, logged["released_digest"])

    # Content altered after verification: refused before any byte leaves, and logged.
    path = demo_sources.root / "documents" / "objects" / digest[:2] / digest
    original = path.read_bytes()
    path.write_bytes(original + b"!")
    try:
        altered = post(broker, "ccc-housing-options", body)
    finally:
        path.write_bytes(original)
    assert altered.status_code == 502, altered.text
    assert entry(broker, altered.json()["exchange_id"])["source_outcome"] == "error"

    unknown = post(broker, "ccc-housing-options", {**body, "document_sha256": "0" * 64})
    assert unknown.status_code == 404
