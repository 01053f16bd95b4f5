"""One sharing request, start to finish (the broker's main job).

    validate -> subject -> consent -> policy input -> decision
      -> deny: log, 403                -> engine unavailable: log, 503
      -> allow: fetch only the released fields (or verify one claim set) through the adapter
               -> project (pure) -> log durably -> answer with the record and a receipt
      -> not found / source failure: log, 404 / 502 / 504

Every request that reaches the decision is in the log before the answer leaves; if the log
cannot be written the answer is 503 and nothing is released. This module does no HTTP: the
route hands it a validated request and turns what it returns or raises into a response.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import structlog
from anyio import from_thread, to_thread

from adapters.errors import DocumentAltered, SourceError, SourceTimeout, SubjectNotFound
from broker.attestation.statement import Audience
from broker.audit.entry import AuditEntry, ReleasedDigest, digest_released_record
from broker.audit.errors import AuditEntryError
from broker.consent.model import ConsentQuery
from broker.core.errors import BrokerError, ConfigurationError, Refused, Unavailable
from broker.core.identifiers import Caller, SubjectId
from broker.core.projection import project
from broker.core.pseudonym import Pseudonym, PseudonymKeyring
from broker.exchange import modes
from broker.exchange.bindings import refuse_unbound
from broker.exchange.document_types import requested_document_types
from broker.exchange.entries import Person, exchange_entry, not_found_entry, provider_notice
from broker.exchange.limits import RateLimited
from broker.exchange.person import UserMismatch, person_of
from broker.exchange.ports import (
    ATTESTED_FIELDS,
    DOCUMENT_FIELDS,
    Appended,
    Attester,
    AuditPort,
    ConsentPort,
    DatasetLookup,
    ExchangeResult,
    ExtraRowsWriter,
    IdentityPort,
    NoConsents,
    NotificationsPort,
    PolicyPort,
    PreviewPort,
    SourcesPort,
    SuspensionPort,
    VerificationLimitPort,
)
from broker.exchange.preview_gate import PreviewGate
from broker.exchange.refusals import refused_entry, subject_pseudonym
from broker.exchange.request import ExchangeRequest, valid_subject
from broker.exchange.suspensions import UserSuspended, check_not_suspended
from broker.policy.engine import ENGINE_UNAVAILABLE, Decision
from broker.policy.input import ConsentStatus, PolicyRequest, build_input

log = structlog.get_logger("broker.exchange")


def _audience(prepared: Prepared) -> Audience:
    """Who an attestation is for: the asking system and, where verified, its user."""
    person, caller = prepared.person, prepared.caller
    verified = person.assurance == "verified" and person.issuer is not None
    return Audience(
        client_id=caller.client_id,
        party_id=caller.party_id,
        user_issuer=person.issuer if verified else None,
        user_subject=person.user_id if verified else None,
    )


@dataclass(frozen=True, kw_only=True)
class Prepared:
    """Everything before the source is asked: who asks, about whom, and the decision."""

    caller: Caller
    subject: SubjectId
    pseudonym: Pseudonym
    person: Person
    decision: Decision


@dataclass
class _Progress:
    """How far :meth:`ExchangeService._prepare` got: what a refusal's log entry can name."""

    caller: Caller | None = None
    pseudonym: Pseudonym | None = None
    person: Person | None = None


class ExchangeService:
    def __init__(
        self,
        *,
        policy: PolicyPort,
        audit: AuditPort,
        pseudonyms: PseudonymKeyring,
        sources: Callable[[], SourcesPort | None],
        datasets: DatasetLookup,
        verification_limiter: VerificationLimitPort,
        consents: ConsentPort | None = None,
        identity: IdentityPort | None = None,
        notifications: NotificationsPort | None = None,
        party_name: Callable[[str], str] = lambda party_id: party_id,
        attester: Attester | None = None,
        previews: PreviewPort | None = None,
        preview_required: Callable[[str, str], bool] = lambda agreement_id, flow_id: False,
        preview_ttl_seconds: int = 7 * 86400,
        test_range_only: bool = False,
        suspensions: SuspensionPort | None = None,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._policy = policy
        self._audit = audit
        self._pseudonyms = pseudonyms
        self._sources = sources
        self._datasets = datasets
        self._verify_limit = verification_limiter
        self._consents = consents or NoConsents()
        self._identity = identity
        self._notifications = notifications
        self._party_name = party_name
        self._attester = attester
        self._preview = PreviewGate(
            previews=previews,
            pseudonyms=pseudonyms,
            ttl_seconds=preview_ttl_seconds,
        )
        self._preview_required = preview_required
        self._test_range_only = test_range_only
        self._suspensions = suspensions
        self._now = now

    # -- the exchange -------------------------------------------------------------------------

    async def handle(
        self, who: Caller | Callable[[], Caller], request: ExchangeRequest
    ) -> ExchangeResult:
        """Decide, fetch, log, answer. ``who`` is the caller, or a blocking check that returns
        it (the gateway's registry check of the client, run first in the same worker-thread
        hand-off as the other reads before the decision). Raises (each after logging, except
        InvalidInput): InvalidInput (422), Refused (403), SubjectNotFound (404), SourceError
        (502/504), Unavailable (503), RateLimited (429, not logged), and whatever the caller
        check raises (before anything else is done)."""
        started = time.perf_counter()
        now = self._now()
        # Who asks, the subject, its consent, the decision: every blocking read and the engine
        # in one hand-off to a worker thread.
        progress = _Progress()
        try:
            prepared = await to_thread.run_sync(self._prepare, who, request, now, progress)
        except BrokerError as e:
            # A break-glass attempt is logged whatever refused it, once the client is known; so
            # is a request whose requested_by disagrees with its user-restricted token, and one
            # by a suspended user.
            logged = request.break_glass or isinstance(e, UserMismatch | UserSuspended)
            if logged and progress.caller is not None:
                await self._log_refusal(progress, request, e, now, started)
            raise
        caller, decision = prepared.caller, prepared.decision
        if decision.allow and request.mode == "attest":
            decision = modes.refuse_partial_attestation(decision, self._attester)
            prepared = replace(prepared, decision=decision)
        entry = self._entry(prepared, request, now)

        if not decision.allow:
            appended = await self._append(entry, None, started)
            if ENGINE_UNAVAILABLE in decision.reasons:
                raise Unavailable(
                    "the policy engine is unavailable: nothing was released"
                ).with_extra(exchange_id=appended.exchange_id)
            raise Refused("the request is not permitted").with_extra(
                exchange_id=appended.exchange_id, reasons=list(decision.caller_reasons)
            )

        matched = decision.matched
        if matched is not None and self._preview_required(matched.agreement_id, matched.flow_id):
            held = await self._preview.check(
                caller=caller,
                user_id=prepared.person.key,
                request=request,
                subject=prepared.subject,
                pseudonym=prepared.pseudonym,
                decision=decision,
                entry=entry,
                log_refusal=lambda denied: self._append(denied, None, time.perf_counter()),
            )
            if held is not None:
                held_entry = replace(entry, details={**(entry.details or {}), "preview": "held"})
                appended = await self._append(held_entry, None, started)
                return ExchangeResult(
                    exchange_id=appended.exchange_id,
                    decision=decision,
                    appended=appended,
                    held=held,
                )
            entry = replace(
                entry,
                details={
                    **(entry.details or {}),
                    "preview": "approved",
                    "preview_of": request.preview_id,
                },
            )

        subject = prepared.subject
        sources = self._sources()
        record: dict[str, Any] | None = None
        match: bool | None = None
        attestations: list[dict[str, Any]] | None = None
        document: AsyncIterator[bytes] | None = None
        try:
            if sources is None:
                raise Unavailable("no source systems are configured")
            if request.mode == "verify":
                match = await self._verify(sources, prepared, request, now, started)
                released_value: Any = {"match": match}
            elif request.mode == "document":
                sha256 = request.document_sha256 or ""
                document = await modes.open_document(sources, request.dataset, subject, sha256)
                released_value = {"document.sha256": sha256}
            elif request.mode == "attest":
                attestations = await modes.attest(
                    sources,
                    self._attester,
                    dataset=request.dataset,
                    subject=subject,
                    pseudonym=prepared.pseudonym,
                    decision=decision,
                    exchange_id=entry.exchange_id,
                    audience=_audience(prepared),
                    purpose=request.purpose,
                    now=now,
                )
                released_value = attestations
            else:
                fetched = await sources.fetch(request.dataset, subject, decision.released_fields)
                record = project(fetched, decision.released_fields)
                released_value = record
        except SubjectNotFound as e:
            appended = await self._append(not_found_entry(entry), "not_found", started)
            e.with_extra(exchange_id=appended.exchange_id)
            raise
        except (SourceError, Unavailable, ConfigurationError) as e:
            # ConfigurationError: no source bound to this dataset (an operator must fix it).
            outcome = "timeout" if isinstance(e, SourceTimeout) else "error"
            if isinstance(e, DocumentAltered):
                await self._document_altered(e, request.dataset, now)
            appended = await self._append(entry, outcome, started)
            log.warning("source failed", dataset=request.dataset, error=type(e).__name__)
            e.with_extra(exchange_id=appended.exchange_id)
            raise
        released = digest_released_record(released_value)
        extras = self._notification(prepared, request, entry)
        appended = await self._append(entry, "ok", started, released, extras)
        if extras and self._notifications is not None:
            self._notifications.wake()
        return ExchangeResult(
            exchange_id=appended.exchange_id,
            decision=decision,
            appended=appended,
            record=record,
            match=match,
            attestations=attestations,
            document=document,
            document_sha256=request.document_sha256,
        )

    async def _document_altered(self, e: DocumentAltered, dataset: str, now: dt.datetime) -> None:
        """A stored document no longer matches its hash: every attestation over it is revoked
        (its status list entry turns revoked), and the fact logged."""
        if self._attester is None:
            return
        try:
            revoked = await to_thread.run_sync(self._attester.document_altered, e.sha256, now)
        except BrokerError as failed:
            log.error("attestations over an altered document not revoked", error=failed.detail)
            return
        log.warning("document altered: attestations revoked", dataset=dataset, revoked=revoked)

    async def _verify(
        self, sources: SourcesPort, p: Prepared, request: ExchangeRequest, now: Any, t: float
    ) -> bool:
        """The yes/no, counted per record once the source has answered (modes.verify)."""
        try:
            return await modes.verify(
                sources, self._verify_limit, self._pseudonyms, request, p, now
            )
        except RateLimited as e:  # the source answered; the answer is withheld, and logged
            await self._log_refusal(
                _Progress(p.caller, p.pseudonym, p.person), request, e, now, t, outcome="ok"
            )
            raise

    async def log_refused(
        self, who: Caller | Callable[[], Caller], request: ExchangeRequest, error: BrokerError
    ) -> None:
        """Log a break-glass attempt refused before :meth:`handle` ran (the client's rate, its
        idempotency key) as a denied exchange; ``error`` gets the entry's ``exchange_id``.
        Raises what the caller check raises, and Unavailable when the log cannot be written."""
        started = time.perf_counter()
        caller = who if isinstance(who, Caller) else await to_thread.run_sync(who)
        await self._log_refusal(_Progress(caller=caller), request, error, self._now(), started)

    async def _log_refusal(
        self,
        progress: _Progress,
        request: ExchangeRequest,
        error: BrokerError,
        now: dt.datetime,
        started: float,
        outcome: str = "not_fetched",
    ) -> None:
        assert progress.caller is not None
        pseudonym = progress.pseudonym or subject_pseudonym(
            request, self._pseudonyms, test_range_only=self._test_range_only
        )
        entry = refused_entry(
            caller=progress.caller,
            request=request,
            error=error,
            now=now,
            pseudonym=pseudonym,
            person=progress.person,
        )
        appended = await self._append(entry, outcome, started)
        error.with_extra(exchange_id=appended.exchange_id)

    def _prepare(
        self,
        who: Caller | Callable[[], Caller],
        request: ExchangeRequest,
        now: dt.datetime,
        progress: _Progress,
    ) -> Prepared:
        """Everything before the decision, in order, noting in ``progress`` what is known.
        Blocking: runs in a worker thread."""
        caller = progress.caller = who if isinstance(who, Caller) else who()
        subject = valid_subject(
            request,
            self._datasets(request.dataset),
            test_range_only=self._test_range_only,
            user_token=caller.user is not None,
        )
        pseudonym = progress.pseudonym = self._pseudonyms.pseudonymise(subject.type, subject.value)
        person = progress.person = person_of(caller, request, self._identity, now)
        check_not_suspended(self._suspensions, caller.party_id, person)
        decision = self._decide(caller, person, request, subject, now)
        return Prepared(
            caller=caller,
            subject=subject,
            pseudonym=pseudonym,
            person=person,
            # The system must be bound to the role it asks under (broker clients bind).
            decision=refuse_unbound(decision, caller.client_id, caller.roles, person.role),
        )

    def _decide(
        self,
        caller: Caller,
        person: Person,
        request: ExchangeRequest,
        subject: SubjectId,
        now: dt.datetime,
    ) -> Decision:
        """The subject's consent (only where an agreement for the dataset asks for it) and the
        decision. Blocking: runs in a worker thread."""
        facts = self._datasets(request.dataset)
        consent: ConsentStatus = "none"
        covers: tuple[str, ...] = ()
        requested_types: tuple[str, ...] | None = None
        if facts is not None and (
            request.agreement_id is None or request.agreement_id in facts.consent_agreements
        ):
            every_version = tuple(
                p.value for p in self._pseudonyms.all_pseudonyms(subject.type, subject.value)
            )
            sources = self._sources()
            if facts.typed_documents and sources is not None:
                # A consent may cover some document types only: which would this release?
                requested_types = from_thread.run(
                    requested_document_types, sources, request, subject
                )
            query = ConsentQuery(
                facts.owner,
                caller.party_id,
                request.purpose,
                request.dataset,
                document_types=requested_types,
                subject_pseudonyms=every_version,
            )
            check = self._consents.check(query, now)
            consent, covers = check.policy_status, check.covered_document_types
        policy_input = build_input(
            PolicyRequest(
                client_id=caller.client_id,
                party=caller.party_id,
                user_id=person.user_id,
                user_role=person.role,
                purpose=request.purpose,
                dataset=request.dataset,
                agreement_id=request.agreement_id,
                fields=ATTESTED_FIELDS
                if request.mode == "attest"
                else DOCUMENT_FIELDS
                if request.mode == "document"
                else (tuple(request.fields) if request.fields is not None else None),
                mode="verify" if request.mode == "verify" else "fetch",
                claims=tuple(sorted(request.claims or {})),
                case_reference=request.case_reference,
                break_glass=request.break_glass,
                justification=request.justification,
                consent=consent,
                consent_covers=covers,
                document_types=requested_types or (),
                user_assurance=person.assurance,
            ),
            now,
        )
        return self._policy.decide(policy_input)

    def _notification(
        self, prepared: Prepared, request: ExchangeRequest, entry: AuditEntry
    ) -> list[ExtraRowsWriter]:
        """The outbox row telling the provider, written in the audit entry's transaction."""
        caller = prepared.caller
        notice = provider_notice(
            entry=entry,
            caller=caller,
            person=prepared.person,
            decision=prepared.decision,
            request=request,
            party_name=self._party_name(caller.party_id),
        )
        if notice is None or self._notifications is None:
            return []
        # The provider holds the record under this identifier already (see broker.notify).
        return [self._notifications.writer(notice, subject=prepared.subject)]

    def _entry(self, prepared: Prepared, request: ExchangeRequest, now: dt.datetime) -> AuditEntry:
        return exchange_entry(
            caller=prepared.caller,
            person=prepared.person,
            decision=prepared.decision,
            pseudonym=prepared.pseudonym,
            request=request,
            now=now,
        )

    async def _append(
        self,
        entry: AuditEntry,
        outcome: str | None,
        started: float,
        released: ReleasedDigest | None = None,
        extras: Sequence[ExtraRowsWriter] = (),
    ) -> Appended:
        final = replace(
            entry,
            source_outcome=outcome,
            released=released,
            latency_us=int((time.perf_counter() - started) * 1_000_000),
        )
        try:
            return await to_thread.run_sync(lambda: self._audit.append(final, extras=extras))
        except AuditEntryError as e:  # our entry is malformed: a bug, never the caller's fault
            log.error("audit entry refused", detail=e.detail)
            raise Unavailable("the audit log refused the entry: nothing was released") from e
        except BrokerError:
            raise
        except Exception as e:  # never release without a durable entry
            raise Unavailable("the audit log could not be written: nothing was released") from e
