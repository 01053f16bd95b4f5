"""Consents that mean what they say, over HTTP on the demo broker with its
demo sources: a consent narrowed to document types covers only those documents and the refusal
names them (logged); a person no source holds, and a period starting in 2000, are refused; a
consent given earlier on paper is recorded with its date and evidence, within a bounded past."""

from __future__ import annotations

import datetime as dt
from typing import Any

from demo.sources.subjects import BENEFITS_CLAIMANT, BENEFITS_CLAIMANT_DOCUMENTS
from tests.exchange.helpers import DAWN, entry, post
from tests.support import LiveBroker, demo_key

COUNCIL = "calderbridge-city-council"
ATTEST = {
    "agreement_id": "ISA-PROOF-REUSE",
    "purpose": "homelessness-assessment",
    "dataset": "ccc.proof-documents",
    "subject": DAWN,
    "mode": "attest",
    "requested_by": {"user_id": "housing-officer-12", "role": "housing-options-officer"},
}


def consent(subject: dict[str, str] = DAWN, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "agreement_id": "ISA-PROOF-REUSE",
        "subject": subject,
        "from_party": COUNCIL,
        "to_party": COUNCIL,
        "purpose": "homelessness-assessment",
        "datasets": ["ccc.proof-documents"],
        "collection_method": "written",
        "recorded_by": {"name": "Priya Marsh", "role": "Benefits officer"},
    }
    body.update(changes)
    return body


def call(broker: LiveBroker, method: str, path: str, body: Any = None) -> Any:
    client = "ccc-revenues-benefits"
    token = broker.token(client, demo_key(client))
    return broker.http.request(
        method, path, json=body, headers={"Authorization": f"Bearer {token}"}
    )


def withdraw(broker: LiveBroker, consent_id: str) -> None:
    assert call(broker, "POST", f"/v1/consents/{consent_id}/withdraw").status_code == 200


def test_a_consent_for_identity_documents_covers_those_only(broker: LiveBroker) -> None:
    recorded = call(broker, "POST", "/v1/consents", consent(document_types=["identity"]))
    assert recorded.status_code == 201, recorded.text
    try:
        # Attesting every document of Dawn's: identity, income and residence.
        refused = post(broker, "ccc-housing-options", ATTEST)
        assert refused.status_code == 403, refused.text
        expected = (
            "agreement 'ISA-PROOF-REUSE' requires consent and the subject's consent covers"
            " document types identity only; this request is for identity, income, residence"
        )
        assert expected in refused.json()["reasons"]
        assert not any(
            "withdrawn" in r or "none is on record" in r for r in refused.json()["reasons"]
        )
        logged = entry(broker, refused.json()["exchange_id"])
        assert logged["decision"] == "deny"
        assert expected in logged["reasons"]

        # The income document alone: refused, naming it.
        income = {
            **ATTEST,
            "mode": "document",
            "document_sha256": BENEFITS_CLAIMANT_DOCUMENTS["income"],
        }
        answer = post(broker, "ccc-housing-options", income)
        assert answer.status_code == 403, answer.text
        assert any(
            r.endswith("covers document types identity only; this request is for income")
            for r in answer.json()["reasons"]
        )
        assert entry(broker, answer.json()["exchange_id"])["decision"] == "deny"

        # The identity document: covered, streamed.
        identity = {**income, "document_sha256": BENEFITS_CLAIMANT_DOCUMENTS["identity"]}
        streamed = post(broker, "ccc-housing-options", identity)
        assert streamed.status_code == 200, streamed.text
    finally:
        withdraw(broker, recorded.json()["id"])


def test_a_consent_for_a_person_no_source_holds_is_refused(broker: LiveBroker) -> None:
    body = consent({"type": "person_id", "value": "P9999999"})
    refused = call(broker, "POST", "/v1/consents", body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"] == [
        {
            "location": "subject.value",
            "message": "no person P9999999 at the source of ccc.proof-documents",
        }
    ]
    listed = broker.http.get(
        "/v1/consents",
        params={"subject_type": "person_id", "subject_value": "P9999999"},
        headers={
            "Authorization": "Bearer "
            + broker.token("ccc-revenues-benefits", demo_key("ccc-revenues-benefits"))
        },
    )
    assert listed.status_code == 200
    assert listed.json()["items"] == []


def test_a_period_starting_in_2000_is_refused(broker: LiveBroker) -> None:
    body = consent(period={"start": "2000-01-01T00:00:00Z"})
    refused = call(broker, "POST", "/v1/consents", body)
    assert refused.status_code == 422, refused.text
    assert [e["location"] for e in refused.json()["errors"]] == ["period.start"]
    # Nor may a consent "given on paper" in 2000 be recorded now, even with evidence.
    paper = consent(given_at="2000-01-01T00:00:00Z", evidence_reference="FORM-2000-1")
    old = call(broker, "POST", "/v1/consents", paper)
    assert old.status_code == 422, old.text
    assert [e["location"] for e in old.json()["errors"]] == ["given_at"]


def test_a_consent_given_on_paper_is_recorded_with_its_date_and_evidence(
    broker: LiveBroker,
) -> None:
    now = dt.datetime.fromtimestamp(broker.clock(), dt.UTC)
    given = (now - dt.timedelta(days=20)).replace(microsecond=0)
    nhs = {"type": "nhs_number", "value": BENEFITS_CLAIMANT.nhs_number}
    without = call(broker, "POST", "/v1/consents", consent(nhs, given_at=given.isoformat()))
    assert without.status_code == 422, without.text
    assert [e["location"] for e in without.json()["errors"]] == ["evidence_reference"]

    body = consent(nhs, given_at=given.isoformat(), evidence_reference="CCC-FORM-2026-0042")
    recorded = call(broker, "POST", "/v1/consents", body)
    assert recorded.status_code == 201, recorded.text
    try:
        shown = recorded.json()
        assert shown["evidence_reference"] == "CCC-FORM-2026-0042"
        assert dt.datetime.fromisoformat(shown["given_at"]) == given
        fhir = shown["fhir"]
        assert dt.datetime.fromisoformat(fhir["provision"]["period"]["start"]) == given
        assert fhir["sourceReference"]["identifier"]["value"] == "CCC-FORM-2026-0042"
        assert dt.datetime.fromisoformat(fhir["dateTime"]) > given  # recorded now
    finally:
        withdraw(broker, recorded.json()["id"])
