"""Building the consent, preview and attestation services from settings (one Services field)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from anyio import from_thread
from sqlalchemy import Engine

from adapters.sources import Sources
from broker.agreements.loader import VerifiedAgreement
from broker.attestation.keys import AttestationSigner, load_or_create_attestation_key
from broker.attestation.statement import (
    Attestation,
    Audience,
    DocumentFacts,
    issue_attestation,
)
from broker.attestation.status import sign_status_list
from broker.attestation.store import NewStatus, SqlAttestationStatuses, revoke_for_consent
from broker.audit.memory import AuditSink
from broker.consent.model import ConsentQuery
from broker.consent.service import ConsentService, SubjectsAtSource
from broker.consent.store import SqlConsentStore
from broker.core.errors import Unavailable
from broker.core.identifiers import SubjectId
from broker.core.pseudonym import Pseudonym, PseudonymKeyring
from broker.policy.runtime import PolicyRuntime
from broker.pseudonym_keys import load_pseudonym_keys
from broker.settings import Settings
from broker.subjects.preview import PreviewService
from broker.subjects.report import HoldRules

#: The public path of the attestations' status list (broker/api/consents.py serves it).
STATUS_LIST_PATH = "/v1/attestations/status-list"


@dataclass
class SubjectServices:
    """Consents, held exchanges, the attestation key and the pseudonym keyring."""

    consents: ConsentService
    previews: PreviewService
    attestation: AttestationSigner
    pseudonyms: PseudonymKeyring
    all_agreements: Callable[[], Sequence[VerifiedAgreement]]
    """Every agreement the broker has verified (any status): holds outlive agreements."""
    issuer: str
    """The broker's public URL: the ``iss`` of attestations and receipts."""
    statuses: SqlAttestationStatuses
    attestation_validity: dt.timedelta
    """How long an attestation is valid (``BROKER_ATTESTATION_VALIDITY_SECONDS``)."""

    @property
    def status_list_uri(self) -> str:
        """Where the attestations' status list is published (their ``status.status_list.uri``)."""
        return f"{self.issuer}{STATUS_LIST_PATH}"

    def attest(
        self,
        *,
        subject: SubjectId,
        pseudonym: Pseudonym,
        document: DocumentFacts,
        dataset: str,
        purpose: str,
        exchange_id: str,
        audience: Audience,
        agreement_id: str,
        flow_id: str,
        now: dt.datetime,
    ) -> Attestation:
        """Sign an attestation for the exchange pipeline (see :func:`issue_attestation`): its
        status is recorded first, under the consent in force for the document's type (if any),
        so that the consent's withdrawal revokes it. Blocking."""
        query = ConsentQuery(
            document.verified_by_party, audience.party_id, purpose, dataset, (document.type,)
        )
        consent = self.consents.check_subject(subject, query, now)
        jti = str(uuid.uuid4())
        iat_ms = int(now.timestamp()) * 1000
        valid_for = self.validity_for(agreement_id, flow_id)
        validity_ms = int(valid_for.total_seconds()) * 1000
        idx = self.statuses.allocate(
            NewStatus(
                jti=jti,
                exchange_id=exchange_id,
                dataset=dataset,
                document_sha256=document.sha256,
                consent_id=consent.consent_id if consent.state == "granted" else None,
                audience=audience.client_id,
                issued_ms=iat_ms,
                expires_ms=iat_ms + validity_ms,
            )
        )
        return issue_attestation(
            self.attestation,
            issuer=self.issuer,
            subject=pseudonym,
            document=document,
            exchange_id=exchange_id,
            audience=audience,
            agreement_id=agreement_id,
            now=now,
            valid_for=valid_for,
            jti=jti,
            status=(idx, self.status_list_uri),
        )

    def validity_for(self, agreement_id: str, flow_id: str) -> dt.timedelta:
        """How long an attestation under ``agreement_id``'s ``flow_id`` is valid: the flow's
        ``attestation_valid_hours`` where it says, else the broker's default."""
        versions = [
            v.agreement
            for v in self.all_agreements()
            if v.agreement is not None and v.agreement.id == agreement_id
        ]
        if versions:  # the newest version: the one in force when the policy allowed
            latest = max(versions, key=lambda a: a.version)
            flow = next((f for f in latest.flows if f.id == flow_id), None)
            if flow is not None and flow.attestation_valid_hours is not None:
                return dt.timedelta(hours=flow.attestation_valid_hours)
        return self.attestation_validity

    def document_altered(self, sha256: str, now: dt.datetime) -> int:
        """Revoke every attestation over ``sha256`` (its content was found altered). Blocking."""
        return self.statuses.revoke_document(sha256, int(now.timestamp() * 1000))

    def status_list(self, now: dt.datetime) -> str:
        """The signed status list of every attestation (``typ: statuslist+jwt``). Blocking."""
        revoked, size = self.statuses.snapshot()
        return sign_status_list(self.attestation, self.status_list_uri, revoked, size, now)

    def hold_rules(self) -> HoldRules:
        return HoldRules.from_agreements(self.all_agreements())


class SourceSubjects:
    """:class:`~broker.consent.service.SubjectsAtSource` over the configured source adapters,
    asked on the event loop from the worker thread the consent service runs in."""

    def __init__(self, sources: Callable[[], Sources | None]) -> None:
        self._sources = sources

    def known(self, dataset: str, subject: SubjectId) -> bool:
        sources = self._sources()
        if sources is None:
            raise Unavailable("no source systems are configured: the person cannot be checked")
        return bool(from_thread.run(sources.exists, dataset, subject))


def build_subject_services(
    settings: Settings,
    engine: Engine,
    audit: AuditSink,
    runtime: PolicyRuntime,
    clock: Callable[[], float],
    subjects_at_source: SubjectsAtSource,
) -> SubjectServices:
    """Raises ConfigurationError when the pseudonym or attestation key cannot be read."""

    def active() -> Sequence[VerifiedAgreement]:
        last = runtime.last
        return () if last is None else last.active()

    def every() -> Sequence[VerifiedAgreement]:
        last = runtime.last
        return () if last is None else last.agreements

    pseudonyms = load_pseudonym_keys(settings.pseudonym_key_file)
    signer = load_or_create_attestation_key(settings.keys_dir)
    consents = ConsentService(
        # A withdrawal revokes the attestations given under the consent, in its transaction.
        store=SqlConsentStore(engine, on_withdraw=revoke_for_consent),
        audit=audit,
        pseudonyms=pseudonyms,
        agreements=active,
        signer=signer,
        issuer=settings.public_url,
        clock=clock,
        subjects=subjects_at_source,
        backdate_max_days=settings.consent_backdate_max_days,
    )
    return SubjectServices(
        consents=consents,
        previews=PreviewService(engine, audit, clock),
        attestation=signer,
        pseudonyms=pseudonyms,
        all_agreements=every,
        issuer=settings.public_url,
        statuses=SqlAttestationStatuses(engine),
        attestation_validity=dt.timedelta(seconds=settings.attestation_validity_seconds),
    )
