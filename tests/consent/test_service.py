"""The consent service without HTTP or a database: in-memory store and audit log, as the
exchange pipeline's tests will use it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from broker.attestation.keys import load_or_create_attestation_key
from broker.audit.errors import AuditUnavailableError
from broker.audit.memory import MemoryAuditLog
from broker.consent.model import ConsentQuery
from broker.consent.rules import RecorderForbidden
from broker.consent.service import ConsentService
from broker.consent.store import MemoryConsentStore
from broker.core.identifiers import Caller, SubjectId
from broker.core.pseudonym import PseudonymKeyring, generate_key
from broker.exchange.ports import ConsentPort
from tests.consent.factories import COUNCIL, T0
from tests.consent.test_rules import proof_reuse

SUBJECT = SubjectId("person_id", "P0001234")
RECORDER = Caller("ccc-revenues-benefits", COUNCIL, frozenset({"consent"}))
AT = dt.datetime.fromtimestamp(T0 / 1000, dt.UTC)


@pytest.fixture
def service(tmp_path: Path) -> ConsentService:
    clock = {"now": T0 / 1000}
    return ConsentService(
        store=MemoryConsentStore(),
        audit=MemoryAuditLog(),
        pseudonyms=PseudonymKeyring((generate_key("v1"),)),
        agreements=lambda: [proof_reuse()],
        signer=load_or_create_attestation_key(tmp_path),
        issuer="https://broker.calderbridge.example",
        clock=lambda: clock["now"],
    )


def record(service: ConsentService) -> str:
    return service.record(
        RECORDER,
        agreement_id="ISA-PROOF-REUSE",
        subject=SUBJECT,
        from_party=COUNCIL,
        to_party=COUNCIL,
        purpose="homelessness-assessment",
        datasets=["ccc.proof-documents"],
        collection_method="verbal",
        recorded_by_name="Priya Marsh",
    ).record.id


def ask(port: ConsentPort, service: ConsentService, when: dt.datetime) -> str:
    pseudonyms = [p.value for p in service.pseudonyms.all_pseudonyms("person_id", "P0001234")]
    return port.status(
        ConsentQuery(
            COUNCIL,
            COUNCIL,
            "homelessness-assessment",
            "ccc.proof-documents",
            subject_pseudonyms=tuple(pseudonyms),
        ),
        when,
    )


def test_record_then_withdraw_through_the_port(service: ConsentService) -> None:
    port: ConsentPort = service
    assert ask(port, service, AT) == "none"
    consent_id = record(service)
    assert ask(port, service, AT) == "given"
    service.withdraw(RECORDER, consent_id)
    assert ask(port, service, AT) == "withdrawn"
    audit = service.audit
    assert isinstance(audit, MemoryAuditLog)
    actions = [e.details["action"] for e in audit.entries if e.details]
    assert actions == ["consent.record", "consent.withdraw"]
    assert all("P0001234" not in repr(e) for e in audit.entries)


def test_no_audit_entry_no_consent(service: ConsentService) -> None:
    audit = service.audit
    assert isinstance(audit, MemoryAuditLog)
    audit.failing = True
    with pytest.raises(AuditUnavailableError):
        record(service)
    assert (
        service.store.for_subject(
            [p.value for p in service.pseudonyms.all_pseudonyms("person_id", "P0001234")]
        )
        == []
    )


def test_another_party_cannot_withdraw(service: ConsentService) -> None:
    consent_id = record(service)
    police = Caller("wcp-mash", "west-calder-police", frozenset({"consent"}))
    with pytest.raises(RecorderForbidden, match="may withdraw"):
        service.withdraw(police, consent_id)


def test_listing_is_narrowed_to_the_callers_party(service: ConsentService) -> None:
    record(service)
    hospital = Caller("r9z-x", "R9Z", frozenset({"consent"}))
    portal = Caller("ccc-citizen-portal", COUNCIL, frozenset({"subject-access"}))
    assert service.list_for_subject(hospital, SUBJECT) == []
    assert len(service.list_for_subject(portal, SUBJECT)) == 1
