"""Recording, withdrawing, listing and checking consents; every one of them logged.

:class:`ConsentService` is the consent area's one entry point. The exchange pipeline uses it
through :class:`broker.exchange.ports.ConsentPort` (``status`` / ``check``): a consent counts
when it is active, inside its period, and its actors, purpose and data match; a withdrawal stops
it at once (nothing is cached). Ordering, so that failures fail closed:

- record: the audit entry is written first, then the record; no audit entry, no consent.
- withdraw: the withdrawal is stored first (it must take effect even if the log is down), then
  logged; a failed log write still raises, so the caller retries and the log catches up.
- reads (listing a subject's consents): logged before the records are read.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from broker.agreements.loader import VerifiedAgreement
from broker.attestation.keys import AttestationSigner
from broker.audit.entry import AgreementRef, AuditEntry
from broker.audit.memory import AuditSink
from broker.consent.fhir import to_fhir
from broker.consent.model import (
    PERSONAL_IDENTIFIERS,
    CollectionMethod,
    ConsentCheck,
    ConsentQuery,
    ConsentRecord,
    evaluate,
)
from broker.consent.rules import RecorderForbidden, consent_scope, recorder_of
from broker.consent.store import ConsentNotFound, ConsentStore
from broker.core.errors import FieldProblem, InvalidInput
from broker.core.identifiers import Caller, SubjectId
from broker.core.pseudonym import Pseudonym, PseudonymKeyring
from broker.policy.input import ConsentStatus

RECEIPT_TYP: Final = "consent-receipt+jwt"

#: How far a consent's ``given_at`` or ``period.start`` may lie before the recording instant and
#: still count as given now (clocks of the collecting service and the broker differ).
SKEW_MS: Final = 5 * 60 * 1000
DAY_MS: Final = 86_400_000


class SubjectsAtSource(Protocol):
    """Whether the source of a dataset holds a person (``adapters.sources.Sources.exists``)."""

    def known(self, dataset: str, subject: SubjectId) -> bool:
        """Blocking. Raises ``SourceError`` (502/504) when the source fails, ``Unavailable``
        when no source is configured: never "unknown" for a failure."""
        ...


@dataclass(frozen=True)
class RecordedConsent:
    record: ConsentRecord
    receipt: str
    """A compact JWS (``typ: consent-receipt+jwt``) signed with the broker's attestation key."""

    def to_json(self) -> dict[str, Any]:
        return {**consent_json(self.record), "receipt": self.receipt}


def consent_json(record: ConsentRecord) -> dict[str, Any]:
    """The API shape of one record: the FHIR R4 Consent plus a few convenience fields."""
    return {
        "id": record.id,
        "status": record.status,
        "agreement_id": record.agreement_id,
        "from_party": record.from_party,
        "to_party": record.to_party,
        "purpose": record.purpose,
        "datasets": list(record.datasets),
        "document_types": list(record.document_types),
        "given_at": _iso(record.given_at_ms),
        "evidence_reference": record.evidence_reference,
        "fhir": to_fhir(record),
    }


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    when = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ms(when: dt.datetime) -> int:
    return round(when.timestamp() * 1000)


class ConsentService:
    def __init__(
        self,
        *,
        store: ConsentStore,
        audit: AuditSink,
        pseudonyms: PseudonymKeyring,
        agreements: Callable[[], Sequence[VerifiedAgreement]],
        signer: AttestationSigner,
        issuer: str,
        clock: Callable[[], float],
        subjects: SubjectsAtSource,
        backdate_max_days: int = 90,
    ) -> None:
        self.subjects = subjects
        self.backdate_max_days = backdate_max_days
        self.store = store
        self.audit = audit
        self.pseudonyms = pseudonyms
        self.agreements = agreements
        self.signer = signer
        self.issuer = issuer
        self.clock = clock

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    # --- recording and withdrawal ------------------------------------------------------------

    def record(
        self,
        caller: Caller,
        *,
        agreement_id: str,
        subject: SubjectId,
        from_party: str,
        to_party: str,
        purpose: str,
        datasets: Sequence[str],
        document_types: Sequence[str] = (),
        period_start: dt.datetime | None = None,
        period_end: dt.datetime | None = None,
        collection_method: CollectionMethod,
        recorded_by_name: str,
        recorded_by_role: str | None = None,
        given_at: dt.datetime | None = None,
        evidence_reference: str | None = None,
    ) -> RecordedConsent:
        """Check the caller may record it and that each dataset's source knows the person, log
        it, store it, sign a receipt.

        Raises :class:`InvalidInput` (fields named; also for a person no source holds),
        :class:`RecorderForbidden`, ``SourceError`` / ``Unavailable`` when a source cannot say,
        and the audit and store errors (nothing is recorded without its audit entry).
        """
        if subject.type not in PERSONAL_IDENTIFIERS:
            raise InvalidInput(
                "a consent is given by one person",
                [FieldProblem("subject.type", "must be nhs_number or person_id")],
            )
        now_ms = self._now_ms()
        given_ms, start_ms, end_ms = self._period(
            now_ms, given_at, period_start, period_end, evidence_reference
        )
        scope = consent_scope(
            self.agreements(),
            agreement_id=agreement_id,
            from_party=from_party,
            to_party=to_party,
            purpose=purpose,
            datasets=datasets,
            document_types=document_types,
            caller_party=caller.party_id,
        )
        # Only the recorder gets this far: nobody else learns whom a source holds.
        for dataset in dict.fromkeys(datasets):
            if not self.subjects.known(dataset, subject):
                detail = f"no person {subject.value} at the source of {dataset}"
                raise InvalidInput(detail, [FieldProblem("subject.value", detail)])
        pseudonym = self.pseudonyms.pseudonymise(subject.type, subject.value)
        record = ConsentRecord(
            id=str(uuid.uuid4()),
            status="active",
            agreement_id=agreement_id,
            agreement_version=scope.agreement.version,
            subject_type=subject.type,
            subject_pseudonym=pseudonym.value,
            subject_key_version=pseudonym.key_version,
            from_party=from_party,
            to_party=to_party,
            purpose=purpose,
            datasets=tuple(dict.fromkeys(datasets)),
            document_types=tuple(dict.fromkeys(document_types)),
            period_start_ms=start_ms,
            period_end_ms=end_ms,
            collection_method=collection_method,
            recorded_by_name=recorded_by_name,
            recorded_by_role=recorded_by_role,
            recorder_party=caller.party_id,
            recorder_client=caller.client_id,
            recorded_at_ms=now_ms,
            given_at_ms=given_ms,
            evidence_reference=evidence_reference,
        )
        self.audit.append(
            AuditEntry(
                kind="admin",
                time_ms=now_ms,
                client_id=caller.client_id,
                party_id=caller.party_id,
                user_id=recorded_by_name,
                user_role=recorded_by_role,
                agreement=AgreementRef(
                    scope.agreement.id, str(scope.agreement.version), scope.agreement.digest()
                ),
                purpose=purpose,
                subject=pseudonym,
                details={
                    "action": "consent.record",
                    "consent_id": record.id,
                    "from_party": from_party,
                    "to_party": to_party,
                    "datasets": list(record.datasets),
                    "document_types": list(record.document_types),
                    "period_start_ms": start_ms,
                    "period_end_ms": end_ms,
                    "collection_method": collection_method,
                    "given_at_ms": given_ms,
                    "evidence_reference_given": evidence_reference is not None,
                },
            )
        )
        self.store.add(record)
        return RecordedConsent(record, self._receipt(record))

    def _period(
        self,
        now_ms: int,
        given_at: dt.datetime | None,
        period_start: dt.datetime | None,
        period_end: dt.datetime | None,
        evidence_reference: str | None,
    ) -> tuple[int | None, int, int | None]:
        """(given_at_ms or None when given now, start, end). A consent does not start before it
        was given; one given before it is recorded (on paper) says when, with the reference of
        its evidence, at most ``backdate_max_days`` ago. Raises InvalidInput naming the field."""
        given_ms = None if given_at is None else _ms(given_at)
        if given_ms is not None:
            earliest = now_ms - self.backdate_max_days * DAY_MS
            if given_ms > now_ms + SKEW_MS:
                raise InvalidInput(
                    "a consent cannot be given in the future",
                    [FieldProblem("given_at", "must not be after the time it is recorded")],
                )
            if given_ms < earliest:
                raise InvalidInput(
                    f"a consent given more than {self.backdate_max_days} days ago cannot be"
                    " recorded now: ask the person again",
                    [
                        FieldProblem(
                            "given_at",
                            f"must be within {self.backdate_max_days} days before recording",
                        )
                    ],
                )
            if given_ms >= now_ms - SKEW_MS:
                given_ms = None  # given now
            elif evidence_reference is None:
                raise InvalidInput(
                    "a consent given before it is recorded needs the reference of its evidence",
                    [FieldProblem("evidence_reference", "required with a past given_at")],
                )
        given_or_now = now_ms if given_ms is None else given_ms
        start_ms = given_or_now if period_start is None else _ms(period_start)
        if start_ms < given_or_now - SKEW_MS:
            raise InvalidInput(
                "a consent cannot start before it was given",
                [
                    FieldProblem(
                        "period.start",
                        "must not be before given_at (a consent given earlier on paper names"
                        " given_at and evidence_reference)"
                        if given_ms is not None
                        else "must not be before the consent is recorded (a consent given"
                        " earlier on paper names given_at and evidence_reference)",
                    )
                ],
            )
        end_ms = None if period_end is None else _ms(period_end)
        if end_ms is not None and end_ms <= start_ms:
            raise InvalidInput(
                "the consent period ends before it starts",
                [FieldProblem("period.end", "must be after period.start")],
            )
        return given_ms, start_ms, end_ms

    def _receipt(self, record: ConsentRecord) -> str:
        claims = {
            "iss": self.issuer,
            "iat": record.recorded_at_ms // 1000,
            "jti": record.id,
            "consent": {
                "id": record.id,
                "agreement_id": record.agreement_id,
                "agreement_version": record.agreement_version,
                "subject": {
                    "pseudonym": record.subject_pseudonym,
                    "key_version": record.subject_key_version,
                },
                "from_party": record.from_party,
                "to_party": record.to_party,
                "purpose": record.purpose,
                "datasets": list(record.datasets),
                "document_types": list(record.document_types),
                "period_start_ms": record.period_start_ms,
                "period_end_ms": record.period_end_ms,
                "collection_method": record.collection_method,
                "given_at_ms": record.given_at_ms,
                "evidence_reference": record.evidence_reference,
                "recorded_by": record.recorded_by_name,
                "recorder_party": record.recorder_party,
                "withdraw_at": f"/v1/consents/{record.id}/withdraw",
            },
        }
        return self.signer.sign(claims, RECEIPT_TYP)

    def withdraw(self, caller: Caller, consent_id: str, reason: str | None = None) -> ConsentRecord:
        """Withdraw at once. Only a system of the party the agreement names as recorder (or the
        party that recorded it) may. Raises ConsentNotFound, ConsentConflict, RecorderForbidden."""
        record = self.store.get(consent_id)
        allowed = {record.recorder_party}
        for dataset in record.datasets:
            named = recorder_of(self.agreements(), record.agreement_id, dataset)
            if named is not None:
                allowed.add(named)
        if caller.party_id not in allowed:
            raise RecorderForbidden("only the party that records this consent may withdraw it")
        now_ms = self._now_ms()
        updated = self.store.withdraw(
            consent_id, at_ms=now_ms, client_id=caller.client_id, reason=reason
        )
        self.audit.append(
            AuditEntry(
                kind="admin",
                time_ms=now_ms,
                client_id=caller.client_id,
                party_id=caller.party_id,
                purpose=record.purpose,
                agreement=self._agreement_ref(record),
                subject=Pseudonym(record.subject_pseudonym, record.subject_key_version),
                details={
                    "action": "consent.withdraw",
                    "consent_id": consent_id,
                    "agreement_id": record.agreement_id,
                    "reason_given": reason is not None,
                },
            )
        )
        return updated

    def _agreement_ref(self, record: ConsentRecord) -> AgreementRef | None:
        for verified in self.agreements():
            a = verified.agreement
            if a is not None and (a.id, a.version) == (
                record.agreement_id,
                record.agreement_version,
            ):
                return AgreementRef(a.id, str(a.version), a.digest())
        return None

    # --- reads -------------------------------------------------------------------------------

    def list_for_subject(self, caller: Caller, subject: SubjectId) -> list[ConsentRecord]:
        """The subject's consents the caller may see (logged first). ``subject-access`` callers
        (the citizen portal) see all; others only those their party is in."""
        all_pseudonyms = self.pseudonyms.all_pseudonyms(subject.type, subject.value)
        self.audit.append(
            AuditEntry(
                kind="audit-read",
                time_ms=self._now_ms(),
                client_id=caller.client_id,
                party_id=caller.party_id,
                subject=all_pseudonyms[-1],
                details={"resource": "consents", "subject_type": subject.type},
            )
        )
        records = self.store.for_subject([p.value for p in all_pseudonyms])
        if "subject-access" in caller.scopes:
            return records
        return [
            r for r in records if caller.party_id in (r.recorder_party, r.from_party, r.to_party)
        ]

    def get(self, caller: Caller, consent_id: str) -> ConsentRecord:
        """One record, logged like a listing. Raises ConsentNotFound, also when the caller may
        not see it (``subject-access`` callers see all; others only their party's)."""
        record = self.store.get(consent_id)
        self.audit.append(
            AuditEntry(
                kind="audit-read",
                time_ms=self._now_ms(),
                client_id=caller.client_id,
                party_id=caller.party_id,
                subject=Pseudonym(record.subject_pseudonym, record.subject_key_version),
                details={"resource": "consent", "consent_id": consent_id},
            )
        )
        if "subject-access" not in caller.scopes and caller.party_id not in (
            record.recorder_party,
            record.from_party,
            record.to_party,
        ):
            raise ConsentNotFound(f"no consent {consent_id}")
        return record

    # --- the port for the exchange pipeline --------------------------------------------------

    def check(self, query: ConsentQuery, now: dt.datetime) -> ConsentCheck:
        """The consent state for one request (see :func:`broker.consent.model.evaluate`), over
        the records of ``query.subject_pseudonyms``. Raises ConsentStoreUnavailable (fail
        closed) when the store cannot be read.
        """
        records = self.store.for_subject(query.subject_pseudonyms)
        return evaluate(records, query, now_ms=_ms(now))

    def check_subject(
        self, subject: SubjectId, query: ConsentQuery, now: dt.datetime
    ) -> ConsentCheck:
        """:meth:`check` for an identifier, pseudonymised here under every key version."""
        pseudonyms = self.pseudonyms.all_pseudonyms(subject.type, subject.value)
        every_version = tuple(p.value for p in pseudonyms)
        return self.check(dataclasses.replace(query, subject_pseudonyms=every_version), now)

    def status(self, query: ConsentQuery, now: dt.datetime) -> ConsentStatus:
        """``PolicyRequest.consent`` for one request: ``given`` only for a consent in force."""
        return self.check(query, now).policy_status
