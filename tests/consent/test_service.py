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
from broker.core.errors import InvalidInput
from broker.core.identifiers import Caller, SubjectId
from broker.core.pseudonym import PseudonymKeyring, generate_key
from broker.exchange.ports import ConsentPort
from tests.consent.factories import COUNCIL, T0
from tests.consent.test_rules import proof_reuse

SUBJECT = SubjectId("person_id", "P0001234")
RECORDER = Caller("ccc-revenues-benefits", COUNCIL, frozenset({"consent"}))
AT = dt.datetime.fromtimestamp(T0 / 1000, dt.UTC)


class Known:
    """The source of every dataset holds exactly these people (a test double of Sources)."""

    def __init__(self, *subjects: SubjectId) -> None:
        self.subjects = set(subjects)
        self.asked: list[tuple[str, SubjectId]] = []

    def known(self, dataset: str, subject: SubjectId) -> bool:
        self.asked.append((dataset, subject))
        return subject in self.subjects


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
        subjects=Known(SUBJECT),
        backdate_max_days=90,
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
    return port.check(
        ConsentQuery(
            COUNCIL,
            COUNCIL,
            "homelessness-assessment",
            "ccc.proof-documents",
            subject_pseudonyms=tuple(pseudonyms),
        ),
        when,
    ).policy_status


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


def _record(service: ConsentService, **changes: object) -> str:
    args: dict[str, object] = {
        "agreement_id": "ISA-PROOF-REUSE",
        "subject": SUBJECT,
        "from_party": COUNCIL,
        "to_party": COUNCIL,
        "purpose": "homelessness-assessment",
        "datasets": ["ccc.proof-documents"],
        "collection_method": "written",
        "recorded_by_name": "Priya Marsh",
    }
    args.update(changes)
    return service.record(RECORDER, **args).record.id  # type: ignore[arg-type]


def _pseudonyms(service: ConsentService) -> list[str]:
    return [p.value for p in service.pseudonyms.all_pseudonyms("person_id", "P0001234")]


def _refused(service: ConsentService, **changes: object) -> list[str]:
    before = len(service.store.for_subject(_pseudonyms(service)))
    with pytest.raises(InvalidInput) as refused:
        _record(service, **changes)
    assert len(service.store.for_subject(_pseudonyms(service))) == before  # nothing recorded
    return [f"{p.location}: {p.message}" for p in refused.value.problems]


def test_a_person_the_source_does_not_hold_is_refused_and_nothing_is_logged(
    service: ConsentService,
) -> None:
    problems = _refused(service, subject=SubjectId("person_id", "P9999999"))
    assert problems == ["subject.value: no person P9999999 at the source of ccc.proof-documents"]
    audit = service.audit
    assert isinstance(audit, MemoryAuditLog)
    assert audit.entries == []


def test_only_the_recorder_makes_the_source_say_whom_it_holds(service: ConsentService) -> None:
    other = Caller("wcp-safeguarding", "west-calder-police", frozenset({"consent"}))
    known = service.subjects
    assert isinstance(known, Known)
    with pytest.raises(RecorderForbidden):
        service.record(
            other,
            agreement_id="ISA-PROOF-REUSE",
            subject=SubjectId("person_id", "P9999999"),
            from_party=COUNCIL,
            to_party=COUNCIL,
            purpose="homelessness-assessment",
            datasets=["ccc.proof-documents"],
            collection_method="written",
            recorded_by_name="Someone",
        )
    assert known.asked == []


def test_a_period_starting_before_it_is_recorded_is_refused(service: ConsentService) -> None:
    start = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    problems = _refused(service, period_start=start)
    assert len(problems) == 1
    assert problems[0].startswith("period.start: must not be before the consent is recorded")


def test_a_consent_given_on_paper_is_recorded_with_its_date_and_evidence(
    service: ConsentService,
) -> None:
    given = AT - dt.timedelta(days=30)
    assert _refused(service, given_at=given) == [
        "evidence_reference: required with a past given_at"
    ]
    consent_id = _record(service, given_at=given, evidence_reference="FORM-2026-0042")
    stored = service.store.get(consent_id)
    assert stored.given_at_ms == round(given.timestamp() * 1000)
    assert stored.period_start_ms == stored.given_at_ms
    assert stored.evidence_reference == "FORM-2026-0042"
    # It does not start before it was given, nor was it given too long ago, or in the future.
    problems = _refused(
        service,
        given_at=given,
        evidence_reference="FORM-2026-0042",
        period_start=given - dt.timedelta(days=1),
    )
    assert problems[0].startswith("period.start: must not be before given_at")
    assert _refused(service, given_at=AT - dt.timedelta(days=91), evidence_reference="FORM-1") == [
        "given_at: must be within 90 days before recording"
    ]
    assert _refused(service, given_at=AT + dt.timedelta(days=1)) == [
        "given_at: must not be after the time it is recorded"
    ]
