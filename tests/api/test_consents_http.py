"""Consent over real HTTP: record, receipt, FHIR, listing, withdrawal, expiry, wrong recorder."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.consent import Consent
from joserfc import jws
from joserfc.jwk import KeySet
from typer.testing import CliRunner

from adapters.documents import DocumentMeta
from broker.attestation.statement import Audience, document_facts
from broker.audit.search import SearchFilters, search
from broker.cli.main import app as cli
from broker.consent.fhir import from_fhir
from broker.consent.model import ConsentQuery
from broker.core.identifiers import SubjectId
from broker.core.nhs_number import test_number as synthetic_nhs
from broker.policy.input import PolicyRequest, build_input
from tests.support import LiveBroker, demo_key, live_broker

COUNCIL = "calderbridge-city-council"
PURPOSE = "homelessness-assessment"
DATASET = "ccc.proof-documents"


class EveryoneKnown:
    """This module's broker runs without source systems: its sources hold every synthetic
    person. (The real check against the demo sources: tests/exchange/test_consent_scope.py.)"""

    def known(self, dataset: str, subject: SubjectId) -> bool:
        return True


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveBroker]:
    tmp = tmp_path_factory.mktemp("consents")

    def customise(services: Any) -> None:
        services.subjects.consents.subjects = EveryoneKnown()

    with live_broker(tmp, f"sqlite:///{tmp / 'broker.db'}", customise=customise, demo=True) as live:
        yield live


def token(live: LiveBroker, client_id: str) -> str:
    return live.token(client_id, demo_key(client_id))


def post(live: LiveBroker, path: str, client_id: str, body: Any = None) -> Any:
    headers = {"Authorization": f"Bearer {token(live, client_id)}"}
    return live.http.post(path, json=body, headers=headers)


def consent_body(nhs: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "agreement_id": "ISA-PROOF-REUSE",
        "subject": {"type": "nhs_number", "value": nhs},
        "from_party": COUNCIL,
        "to_party": COUNCIL,
        "purpose": PURPOSE,
        "datasets": [DATASET],
        "document_types": ["identity", "income"],
        "period": {"end": "2099-01-01T00:00:00Z"},
        "collection_method": "written",
        "recorded_by": {"name": "Priya Marsh", "role": "Benefits officer"},
    }
    body.update(changes)
    return body


def now(live: LiveBroker) -> dt.datetime:
    return dt.datetime.fromtimestamp(live.clock(), dt.UTC)


def status(live: LiveBroker, nhs: str, document_type: str | None = "income") -> str:
    types = None if document_type is None else (document_type,)
    query = ConsentQuery(COUNCIL, COUNCIL, PURPOSE, DATASET, types)
    return live.services.subjects.consents.check_subject(
        SubjectId("nhs_number", nhs), query, now(live)
    ).state


def test_record_receipt_fhir_list_and_withdraw(demo: LiveBroker) -> None:
    nhs = synthetic_nhs(101)
    assert status(demo, nhs) == "none"
    created = post(demo, "/v1/consents", "ccc-revenues-benefits", consent_body(nhs))
    assert created.status_code == 201, created.text
    answer = created.json()
    consent_id = answer["id"]
    assert created.headers["location"] == f"/v1/consents/{consent_id}"
    assert nhs not in created.text  # the identifier never comes back in clear

    # The receipt verifies with the published attestation keys.
    keys = KeySet.import_key_set(demo.get("/.well-known/attestation-keys.json").json())
    receipt = jws.deserialize_compact(answer["receipt"], keys, algorithms=["Ed25519"])
    assert receipt.protected["typ"] == "consent-receipt+jwt"
    assert json.loads(receipt.payload)["consent"]["id"] == consent_id

    # The FHIR form validates and round-trips.
    fhir = Consent.model_validate(answer["fhir"])
    assert from_fhir(json.loads(fhir.model_dump_json(exclude_none=True, by_alias=True))).id == (
        consent_id
    )

    assert status(demo, nhs) == "granted"
    assert status(demo, nhs, "residence") == "not_covered"  # narrowed to identity and income

    listed = demo.get(
        "/v1/consents",
        token(demo, "ccc-citizen-portal"),
        params={"subject_type": "nhs_number", "subject_value": nhs},
    )
    assert listed.status_code == 200
    assert [c["id"] for c in listed.json()["items"]] == [consent_id]
    one = demo.get(created.headers["location"], token(demo, "ccc-revenues-benefits"))
    assert one.status_code == 200
    assert one.json()["fhir"]["provision"]["type"] == "permit"
    hidden = demo.get(created.headers["location"], token(demo, "ccc-governance"))
    assert hidden.status_code == 403  # governance lacks the consent scope

    withdrawn = post(
        demo,
        f"/v1/consents/{consent_id}/withdraw",
        "ccc-citizen-portal",
        {"reason": "the citizen asked"},
    )
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["status"] == "inactive"
    # The next request is denied at once: no cache to wait for.
    assert status(demo, nhs) == "withdrawn"
    again = post(demo, f"/v1/consents/{consent_id}/withdraw", "ccc-revenues-benefits")
    assert again.status_code == 409

    # Recording, the read and the withdrawal are all in the audit log.
    entries = search(demo.services.engine, SearchFilters(), limit=50).items
    actions = [
        (e["details"] or {}).get("action") or (e["details"] or {}).get("resource")
        for e in entries
        if e["kind"] in ("admin", "audit-read")
    ]
    assert {"consent.record", "consents", "consent.withdraw"} <= set(actions)


def test_a_consent_expires_at_the_end_of_its_period(demo: LiveBroker) -> None:
    nhs = synthetic_nhs(102)
    end = now(demo) + dt.timedelta(days=7)
    body = consent_body(nhs, period={"end": end.isoformat()}, document_types=[])
    assert post(demo, "/v1/consents", "ccc-revenues-benefits", body).status_code == 201
    assert status(demo, nhs) == "granted"
    demo.clock.offset += 8 * 86400
    try:
        assert status(demo, nhs) == "expired"
        every_version = demo.services.subjects.pseudonyms.all_pseudonyms("nhs_number", nhs)
        policy = demo.services.subjects.consents.status(
            ConsentQuery(
                COUNCIL,
                COUNCIL,
                PURPOSE,
                DATASET,
                subject_pseudonyms=tuple(p.value for p in every_version),
            ),
            now(demo),
        )
        assert policy == "none"
    finally:
        demo.clock.offset -= 8 * 86400


def test_only_the_named_recorder_may_record(demo: LiveBroker) -> None:
    key = demo.register("r9z-consent-desk", ("consent",), party="R9Z")
    headers = {"Authorization": f"Bearer {demo.token('r9z-consent-desk', key)}"}
    body = consent_body(synthetic_nhs(103))
    refused = demo.http.post("/v1/consents", json=body, headers=headers)
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert f"only {COUNCIL} may record" in refused.json()["detail"]


@pytest.mark.parametrize(
    ("client_id", "expected"),
    [
        pytest.param("ccc-housing-options", 403, id="exchange-scope-only"),
        pytest.param(None, 401, id="no-token"),
    ],
)
def test_scope_is_needed(demo: LiveBroker, client_id: str | None, expected: int) -> None:
    headers = {"Authorization": f"Bearer {token(demo, client_id)}"} if client_id else {}
    body = consent_body(synthetic_nhs(104))
    response = demo.http.post("/v1/consents", json=body, headers=headers)
    assert response.status_code == expected
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("changes", "locations"),
    [
        pytest.param(
            {"subject": {"type": "nhs_number", "value": "9434765918"}},
            {"subject.value"},
            id="bad-nhs-number",
        ),
        pytest.param({"datasets": ["ccc.council-tax"]}, {"datasets.0"}, id="no-flow"),
        pytest.param(
            {"collection_method": "telepathy", "purpose": ""},
            {"collection_method", "purpose"},
            id="several-bad-fields",
        ),
        pytest.param(
            {"period": {"start": "2099-12-01T00:00:00Z", "end": "2099-11-01T00:00:00Z"}},
            {"period.end"},
            id="period-backwards",
        ),
        pytest.param({"document_types": ["passport"]}, {"document_types.0"}, id="bad-type"),
        pytest.param(
            {"subject": {"type": "uprn", "value": "100070000001"}},
            {"subject.type"},
            id="household-identifier",
        ),
    ],
)
def test_bad_fields_are_named(
    demo: LiveBroker, changes: dict[str, Any], locations: set[str]
) -> None:
    body = consent_body(synthetic_nhs(105), **changes)
    response = post(demo, "/v1/consents", "ccc-revenues-benefits", body)
    assert response.status_code == 422, response.text
    assert locations <= {e["location"] for e in response.json()["errors"]}


def test_listing_names_bad_query_fields(demo: LiveBroker) -> None:
    response = demo.get(
        "/v1/consents",
        token(demo, "ccc-citizen-portal"),
        params={"subject_type": "nhs_number", "subject_value": "123"},
    )
    assert response.status_code == 422
    assert [e["location"] for e in response.json()["errors"]] == ["subject_value"]


def test_withdrawing_an_unknown_consent_is_404(demo: LiveBroker) -> None:
    response = post(demo, "/v1/consents/nope/withdraw", "ccc-revenues-benefits")
    assert response.status_code == 404


def test_the_live_policy_allows_with_consent_and_denies_at_once_after_withdrawal(
    demo: LiveBroker,
) -> None:
    """The consent port feeding the live policy, as the exchange pipeline will wire it."""
    nhs = synthetic_nhs(106)
    pseudonyms = [
        p.value for p in demo.services.subjects.pseudonyms.all_pseudonyms("nhs_number", nhs)
    ]

    def decide() -> tuple[bool, tuple[str, ...]]:
        when = dt.datetime(2026, 11, 30, 10, 0, tzinfo=dt.UTC)  # a Monday, office hours
        consent = demo.services.subjects.consents.status(
            ConsentQuery(COUNCIL, COUNCIL, PURPOSE, DATASET, subject_pseudonyms=tuple(pseudonyms)),
            when,
        )
        request = PolicyRequest(
            client_id="ccc-housing-options",
            party=COUNCIL,
            user_id="housing-officer-3",
            user_role="housing-options-officer",
            purpose=PURPOSE,
            dataset=DATASET,
            agreement_id="ISA-PROOF-REUSE",
            fields=("document.type",),
            consent=consent,
            user_assurance="verified",
        )
        decision = demo.services.policy.decide(build_input(request, when))
        return decision.allow, tuple(decision.reasons)

    allowed, reasons = decide()
    assert not allowed
    assert any("none is on record" in r for r in reasons)
    # Given on paper on 1 November (within the bounded past), recorded now with its evidence.
    body = consent_body(
        nhs,
        document_types=[],
        period={},
        given_at="2026-11-01T00:00:00Z",
        evidence_reference="CCC-CONSENT-FORM-0042",
    )
    created = post(demo, "/v1/consents", "ccc-revenues-benefits", body)
    assert created.status_code == 201, created.text
    assert decide()[0]
    withdrawn = post(demo, f"/v1/consents/{created.json()['id']}/withdraw", "ccc-citizen-portal")
    assert withdrawn.status_code == 200
    allowed, reasons = decide()
    assert not allowed
    assert any("withdrawn" in r for r in reasons)


def test_an_attestation_verifies_offline_against_the_published_keys(
    demo: LiveBroker, tmp_path: Path
) -> None:
    meta = DocumentMeta(
        sha256="7" * 64,
        type="income",
        issuer="Calderbridge Payroll Services",
        verified_by="Priya Marsh",
        verified_at="2026-10-02",
        verification_method="original payslips seen in person",
        media_type="application/pdf",
        size=2048,
    )
    person = SubjectId("nhs_number", synthetic_nhs(107))
    subject = demo.services.subjects.pseudonyms.pseudonymise(person.type, person.value)
    attestation = demo.services.subjects.attest(
        subject=person,
        pseudonym=subject,
        document=document_facts(meta, COUNCIL),
        dataset="ccc.proof-documents",
        purpose="homelessness-assessment",
        exchange_id="0190f0a8-0000-7000-8000-0000000000b1",
        audience=Audience("ccc-housing-options", COUNCIL),
        agreement_id="ISA-PROOF-REUSE",
        flow_id="proof-documents-to-housing-options",
        now=dt.datetime.now(dt.UTC),
    )
    assert attestation.claims["document"]["verification_method"].startswith("original payslips")
    jwks = tmp_path / "attestation-keys.json"
    jwks.write_text(demo.get("/.well-known/attestation-keys.json").text)
    good = tmp_path / "attestation.json"
    good.write_text(json.dumps(attestation.to_json()))
    header, payload, signature = attestation.jws.split(".")
    altered = tmp_path / "altered.jws"
    altered.write_text(".".join([header, payload[:-4] + "AAAA", signature]))
    runner = CliRunner()
    ok = runner.invoke(cli, ["attestation", "verify", str(good), "--jwks", str(jwks)])
    assert ok.exit_code == 0, ok.output
    refused = runner.invoke(cli, ["attestation", "verify", str(altered), "--jwks", str(jwks)])
    assert refused.exit_code == 1, refused.output
