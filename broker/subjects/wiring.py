"""Building the consent, preview and attestation services from settings (one Services field)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from anyio import from_thread
from sqlalchemy import Engine

from adapters.sources import Sources
from broker.agreements.loader import VerifiedAgreement
from broker.attestation.keys import AttestationSigner, load_or_create_attestation_key
from broker.attestation.statement import (
    DEFAULT_VALIDITY,
    Attestation,
    DocumentFacts,
    issue_attestation,
)
from broker.audit.memory import AuditSink
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

    def attest(
        self,
        *,
        subject: Pseudonym,
        document: DocumentFacts,
        exchange_id: str,
        recipient_party: str,
        agreement_id: str,
        now: dt.datetime,
        valid_for: dt.timedelta = DEFAULT_VALIDITY,
    ) -> Attestation:
        """Sign an attestation for the exchange pipeline (see :func:`issue_attestation`)."""
        return issue_attestation(
            self.attestation,
            issuer=self.issuer,
            subject=subject,
            document=document,
            exchange_id=exchange_id,
            recipient_party=recipient_party,
            agreement_id=agreement_id,
            now=now,
            valid_for=valid_for,
        )

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
        store=SqlConsentStore(engine),
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
    )
