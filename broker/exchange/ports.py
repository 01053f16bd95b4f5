"""What the exchange service talks to (ports) and what it answers (values).

The service (:mod:`broker.exchange.service`) orchestrates and depends on these Protocols only;
:mod:`broker.container` wires the concrete classes (the audit log, the source adapters, the
consent and preview stores, the identity providers, the outbox, the policy holder). This module
imports no database or HTTP library, not even through the modules it imports
(tests/exchange/test_ports.py checks it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from broker.attestation.statement import Attestation, Audience, DocumentFacts
from broker.audit.port import Appended as Appended
from broker.audit.port import AuditSink
from broker.audit.port import ExtraRowsWriter as ExtraRowsWriter
from broker.consent.model import ConsentCheck, ConsentQuery
from broker.core.identifiers import SubjectId
from broker.core.pseudonym import Pseudonym
from broker.notify.notice import ProviderNotice
from broker.policy.engine import Decision

#: The audit port: ``append`` returns once the entry is durable, or raises.
AuditPort = AuditSink

#: What an attestation states about a proof document (never its content).
ATTESTED_FIELDS = (
    "document.type",
    "document.issuer",
    "document.verified_by",
    "document.verified_at",
    "document.verification_method",
    "document.sha256",
)

#: What a document answer releases: the document itself, with its type and hash.
DOCUMENT_FIELDS = ("document.type", "document.sha256", "document.content")


@dataclass(frozen=True)
class DatasetFacts:
    owner: str
    subject_types: frozenset[str]
    consent_agreements: frozenset[str] = frozenset()
    """Agreements with a consent-required flow on this dataset: only then is consent looked up
    (the policy still decides; without a lookup it sees ``none``)."""
    typed_documents: bool = False
    """The dataset's records are typed documents (a ``document.type`` field): a consent may be
    narrowed to some types, so the exchange reads which types a request would release."""
    fields: frozenset[str] | None = None
    """The dataset's catalogue (field names); a request naming anything else is refused before
    the policy is asked. None: not known here (the policy alone judges the names)."""


class PolicyPort(Protocol):
    def decide(self, policy_input: Mapping[str, Any]) -> Decision:
        """The decision; never raises (failures deny with ``ENGINE_UNAVAILABLE``)."""
        ...


class VerifyAnswer(Protocol):
    """A source's verification answer (:class:`adapters.records.Verification`)."""

    @property
    def match(self) -> bool: ...
    @property
    def record_key(self) -> str:
        """The record's stable key at the source: pseudonymised before it is stored."""
        ...


class SourcesPort(Protocol):
    """The source systems by dataset id (:class:`adapters.sources.Sources`)."""

    async def fetch(
        self, dataset: str, subject: SubjectId, fields: Sequence[str]
    ) -> dict[str, Any]: ...

    async def verify(
        self, dataset: str, subject: SubjectId, claims: Mapping[str, object]
    ) -> VerifyAnswer: ...

    def stream_document(
        self, dataset: str, subject: SubjectId, sha256: str
    ) -> AsyncIterator[bytes]: ...


class ConsentPort(Protocol):
    """What the exchange pipeline asks before it asks the policy."""

    def check(self, query: ConsentQuery, now: dt.datetime) -> ConsentCheck:
        """The consent state; its ``policy_status`` is ``PolicyRequest.consent``."""
        ...


class NoConsents:
    """A port that finds no consent: consent-required flows deny (tests without consents)."""

    def check(self, query: ConsentQuery, now: dt.datetime) -> ConsentCheck:
        return ConsentCheck("none")


class HeldPreview(Protocol):
    """An exchange held for the citizen's preview (``broker.subjects.preview.HeldExchange``)."""

    @property
    def requester_party(self) -> str: ...
    @property
    def requester_client(self) -> str | None: ...
    @property
    def requester_user(self) -> str | None: ...
    @property
    def agreement_id(self) -> str: ...
    @property
    def dataset(self) -> str: ...
    @property
    def purpose(self) -> str: ...
    @property
    def subject_pseudonym(self) -> str: ...
    @property
    def fields(self) -> tuple[str, ...]: ...
    @property
    def status(self) -> str: ...
    @property
    def expires_at_ms(self) -> int: ...


class PreviewPort(Protocol):
    def hold(
        self,
        *,
        exchange_id: str,
        subject: Pseudonym,
        requester_party: str,
        requester_client: str,
        requester_user: str,
        agreement_id: str,
        dataset: str,
        purpose: str,
        fields: Sequence[str],
        ttl_seconds: int,
    ) -> HeldPreview: ...

    def status(self, exchange_id: str) -> HeldPreview: ...

    def release(self, exchange_id: str) -> bool: ...


class Attester(Protocol):
    """Signs attestations with a status entry each (``broker.subjects.wiring.SubjectServices``).
    Both methods block (run them in a worker thread)."""

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
        """Record the attestation's status (under the consent in force, if any), then sign; valid
        as long as the agreement's flow says (else the broker's default)."""
        ...

    def document_altered(self, sha256: str, now: dt.datetime) -> int:
        """Revoke every attestation over a document whose content no longer matches
        ``sha256``; returns how many."""
        ...


class VerifiedPerson(Protocol):
    @property
    def user_id(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def issuer(self) -> str: ...


class IdentityPort(Protocol):
    """The parties' identity providers (:class:`broker.identity.service.IdentityProviders`)."""

    def check_request(
        self,
        party_id: str,
        client_id: str,
        id_token: str | None,
        *,
        break_glass: bool,
        now: float,
        asserted_role: str | None = None,
    ) -> VerifiedPerson | None:
        """The verified person when a token was sent, None when none was sent and none is
        needed; raises when one is needed or the token is bad."""
        ...


class SuspensionPort(Protocol):
    """Verified users suspended by their party's governance officers
    (:class:`broker.identity.suspensions.UserSuspensions`, a snapshot at most a second old)."""

    def suspended(self, party_id: str, issuer: str, subject: str) -> bool: ...


class NotificationsPort(Protocol):
    """Provider notifications (:class:`broker.notify.service.Notifications`)."""

    def writer(
        self, notice: ProviderNotice, *, subject: SubjectId | None = None
    ) -> ExtraRowsWriter:
        """Writes the notice's outbox row in the audit entry's transaction."""
        ...

    def wake(self) -> None: ...


@dataclass(frozen=True, kw_only=True)
class VerificationAnswer:
    """One verification answer about to leave: the record it is about and who asks under what."""

    dataset: str
    records: tuple[str, ...]
    """The pseudonym of the record's stable key under every key version, the current first."""
    party_id: str
    agreement_id: str
    flow_id: str
    client_id: str


class VerificationLimitPort(Protocol):
    def take(self, answer: VerificationAnswer, now_ms: int) -> None:
        """Count one verification answer, or raise ``RateLimited`` (nothing counted)."""
        ...


@dataclass(frozen=True, kw_only=True)
class ExchangeResult:
    """A 200 answer (or a 202: held for the citizen's preview). HTTP shapes are the API's
    (broker/api/exchanges.py)."""

    exchange_id: str
    decision: Decision
    appended: Appended
    record: dict[str, Any] | None = None
    """``fetch`` mode: the released record."""
    match: bool | None = None
    """``verify`` mode: whether the claims match."""
    attestations: list[dict[str, Any]] | None = None
    """``attest`` mode: the signed attestations."""
    held: HeldPreview | None = None
    """Set when the exchange is held for the citizen's preview (a 202 answer)."""
    document: AsyncIterator[bytes] | None = field(default=None, repr=False)
    """``document`` mode: the content, already checked against its SHA-256 before the first
    chunk, to stream after the log entry is durable."""
    document_sha256: str | None = None


#: Looks up a dataset's facts (owner, subject types, consent agreements); None when unknown.
DatasetLookup = Callable[[str], DatasetFacts | None]
