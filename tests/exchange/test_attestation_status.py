"""Attestations bound and current, over HTTP on the demo broker: issued to the asking system
(and its verified user), refused to another system; revoked in the signed status list when the
consent behind them is withdrawn or their document is found altered; and never signed over a
document whose content no longer matches its stored hash."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import KeySet, OKPKey
from typer.testing import CliRunner

from broker.attestation.errors import AttestationInvalid
from broker.attestation.status import MEDIA_TYPE, REVOKED, VALID, verify_status_list
from broker.cli.main import app
from tests.exchange.helpers import DAWN, entry, post, record_consent
from tests.support import LiveBroker, demo_key

ATTEST = {
    "agreement_id": "ISA-PROOF-REUSE",
    "purpose": "homelessness-assessment",
    "dataset": "ccc.proof-documents",
    "subject": DAWN,
    "mode": "attest",
    "requested_by": {"user_id": "housing-officer-12", "role": "housing-options-officer"},
}
SYSTEM = "ccc-housing-options"


def withdraw(broker: LiveBroker, consent_id: str) -> Any:
    token = broker.token("ccc-revenues-benefits", demo_key("ccc-revenues-benefits"))
    return broker.http.post(
        f"/v1/consents/{consent_id}/withdraw", headers={"Authorization": f"Bearer {token}"}
    )


@pytest.fixture
def consent(broker: LiveBroker) -> Iterator[str]:
    """Dawn's consent, withdrawn after the test if it still stands (one at a time)."""
    recorded = record_consent(broker, "ccc.proof-documents")
    assert recorded.status_code == 201, recorded.text
    consent_id = str(recorded.json()["id"])
    yield consent_id
    withdraw(broker, consent_id)


def keys(broker: LiveBroker) -> list[OKPKey]:
    keyset = KeySet.import_key_set(broker.http.get("/.well-known/attestation-keys.json").json())
    return [k for k in keyset.keys if isinstance(k, OKPKey)]


def attest(broker: LiveBroker) -> list[dict[str, Any]]:
    answer = post(broker, SYSTEM, ATTEST)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["attestations"])


def status_of(broker: LiveBroker, attestation: dict[str, Any]) -> int:
    """The attestation's bit in the broker's signed status list, checked as a relying system."""
    ref = attestation["claims"]["status"]["status_list"]
    response = broker.http.get(ref["uri"].removeprefix(broker.url))
    assert response.status_code == 200
    assert response.headers["content-type"] == MEDIA_TYPE
    found = verify_status_list(response.text, keys(broker), uri=ref["uri"], now=_now())
    return found.status(ref["idx"])


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def verify_cli(tmp_path: Path, broker: LiveBroker, attestation: Any, *extra: str) -> Any:
    (tmp_path / "keys.json").write_text(broker.http.get("/.well-known/attestation-keys.json").text)
    (tmp_path / "a.json").write_text(json.dumps(attestation))
    return CliRunner().invoke(
        app,
        [
            "attestation",
            "verify",
            str(tmp_path / "a.json"),
            "--jwks",
            str(tmp_path / "keys.json"),
            *extra,
        ],
    )


def test_issued_to_the_asking_system_and_user_and_refused_to_another(
    broker: LiveBroker, consent: str, tmp_path: Path
) -> None:
    attestations = attest(broker)
    claims = attestations[0]["claims"]
    assert claims["aud"] == SYSTEM
    assert claims["party"] == "calderbridge-city-council"
    assert claims["user"]["sub"] == "housing-officer-12"
    assert claims["user"]["iss"].startswith("http")
    # As long as the agreement's flow says (attestation_valid_hours: 72); a flow that says
    # nothing gets the broker's default (BROKER_ATTESTATION_VALIDITY_SECONDS, 24 hours).
    assert claims["exp"] - claims["iat"] == 72 * 3600
    subjects = broker.services.subjects
    assert subjects.validity_for("ISA-PROOF-REUSE", "proof-documents-to-housing-options") == (
        dt.timedelta(hours=72)
    )
    default = subjects.validity_for("ISA-PROOF-REUSE", "benefit-claims-to-housing-options")
    assert default.total_seconds() == broker.settings.attestation_validity_seconds == 86400
    assert status_of(broker, attestations[0]) == VALID

    mine = verify_cli(tmp_path, broker, attestations[0], "--audience", SYSTEM)
    assert mine.exit_code == 0, mine.output
    assert "status valid" in mine.output
    theirs = verify_cli(tmp_path, broker, attestations[0], "--audience", "ccc-revenues-benefits")
    assert theirs.exit_code == 1
    assert theirs.output.startswith("REFUSED (audience)")


def test_withdrawing_the_consent_revokes_its_attestations(
    broker: LiveBroker, consent: str, tmp_path: Path
) -> None:
    attestations = attest(broker)
    assert {status_of(broker, a) for a in attestations} == {VALID}
    saved = tmp_path / "status-list.jwt"
    saved.write_text(broker.http.get("/v1/attestations/status-list").text)

    assert withdraw(broker, consent).status_code == 200
    assert {status_of(broker, a) for a in attestations} == {REVOKED}
    revoked = verify_cli(tmp_path, broker, attestations[0], "--audience", SYSTEM, "--json")
    assert revoked.exit_code == 1, revoked.output
    assert json.loads(revoked.output) == {
        "valid": False,
        "check": "status",
        "reason": "the attestation has been revoked",
    }
    # The list saved before the withdrawal still says valid (offline, as of when it was saved).
    offline = verify_cli(tmp_path, broker, attestations[0], "--status-list", str(saved))
    assert offline.exit_code == 0, offline.output


def test_an_altered_document_is_never_attested_and_its_attestations_are_revoked(
    broker: LiveBroker, consent: str, demo_sources: Any, tmp_path: Path
) -> None:
    from demo.sources.subjects import BENEFITS_CLAIMANT_DOCUMENTS

    digest = BENEFITS_CLAIMANT_DOCUMENTS["income"]
    before = [a for a in attest(broker) if a["claims"]["document"]["sha256"] == digest]
    others = [a for a in attest(broker) if a["claims"]["document"]["sha256"] != digest]
    assert before
    assert others
    path = demo_sources.root / "documents" / "objects" / digest[:2] / digest
    original = path.read_bytes()
    path.write_bytes(original + b" altered after verification")
    try:
        altered = post(broker, SYSTEM, ATTEST)
    finally:
        path.write_bytes(original)
    assert altered.status_code == 502, altered.text
    assert "does not match its SHA-256" in altered.json()["detail"]
    assert "attestations" not in altered.json()
    exchange_id = altered.json()["exchange_id"]
    assert entry(broker, exchange_id)["source_outcome"] == "error"
    statuses = broker.services.subjects.statuses
    assert statuses.exchange_count(exchange_id) == 0  # nothing was signed
    # Every attestation over the altered document is revoked; the others stand.
    assert {status_of(broker, a) for a in before} == {REVOKED}
    assert {status_of(broker, a) for a in others} == {VALID}
    refused = verify_cli(tmp_path, broker, before[0], "--audience", SYSTEM)
    assert refused.exit_code == 1
    assert refused.output.startswith("REFUSED (status)")


def test_the_document_mode_finding_an_altered_document_revokes_too(
    broker: LiveBroker, consent: str, demo_sources: Any
) -> None:
    from demo.sources.subjects import BENEFITS_CLAIMANT_DOCUMENTS

    digest = BENEFITS_CLAIMANT_DOCUMENTS["identity"]
    before = [a for a in attest(broker) if a["claims"]["document"]["sha256"] == digest]
    path = demo_sources.root / "documents" / "objects" / digest[:2] / digest
    original = path.read_bytes()
    path.write_bytes(original + b"!")
    try:
        body = {**ATTEST, "mode": "document", "document_sha256": digest}
        altered = post(broker, SYSTEM, body)
    finally:
        path.write_bytes(original)
    assert altered.status_code == 502, altered.text
    assert {status_of(broker, a) for a in before} == {REVOKED}


def test_the_status_list_is_signed_by_the_attestation_key(
    broker: LiveBroker, tmp_path: Path
) -> None:
    response = broker.http.get("/v1/attestations/status-list")
    assert response.status_code == 200
    uri = f"{broker.settings.public_url}/v1/attestations/status-list"
    verify_status_list(response.text, keys(broker), uri=uri, now=_now())
    header = json.loads(base64.urlsafe_b64decode(response.text.split(".")[0] + "=="))
    assert header["typ"] == "statuslist+jwt"
    assert header["alg"] == "Ed25519"
    forged = response.text.rsplit(".", 1)[0] + ".AAAA" + response.text.rsplit(".", 1)[1][4:]
    with pytest.raises(AttestationInvalid, match="signature"):
        verify_status_list(forged, keys(broker), uri=uri, now=_now())
