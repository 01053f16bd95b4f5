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
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import structlog
from anyio import to_thread
from sqlalchemy import Connection

from adapters.errors import SourceError, SourceTimeout, SubjectNotFound
from adapters.sources import Sources
from broker.attestation.statement import document_facts
from broker.audit.entry import (
    AgreementRef,
    AuditEntry,
    ReleasedDigest,
    WithheldField,
    digest_released_record,
)
from broker.audit.errors import AuditEntryError
from broker.audit.log import Appended, AuditLog
from broker.consent.model import ConsentQuery
from broker.consent.service import ConsentPort
from broker.core.errors import (
    BrokerError,
    ConfigurationError,
    FieldProblem,
    InvalidInput,
    NotFound,
    Refused,
    Unavailable,
)
from broker.core.identifiers import SubjectId, parse_subject
from broker.core.projection import project
from broker.core.pseudonym import Pseudonym, PseudonymKeyring
from broker.exchange.limits import VerificationLimiter
from broker.exchange.ports import (
    ATTESTED_FIELDS,
    DOCUMENT_FIELDS,
    Attester,
    Caller,
    DatasetFacts,
    ExchangeResult,
    NoConsents,
    PreviewPort,
)
from broker.exchange.request import ExchangeRequest, problems_of
from broker.identity.service import IdentityProviders
from broker.notify.outbox import ProviderNotice, default_summary
from broker.notify.service import Notifications
from broker.policy.engine import ENGINE_UNAVAILABLE, Decision
from broker.policy.holder import PolicyHolder
from broker.policy.input import ConsentStatus, PolicyRequest, build_input
from broker.subjects.preview import HeldExchange

log = structlog.get_logger("broker.exchange")

__all__ = [
    "ATTESTED_FIELDS",
    "Attester",
    "Caller",
    "ConsentPort",
    "DatasetFacts",
    "ExchangeResult",
    "ExchangeService",
    "NoConsents",
    "PreviewPort",
]


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first:
        yield first
    async for chunk in rest:
        yield chunk


class ExchangeService:
    def __init__(
        self,
        *,
        policy: PolicyHolder,
        audit: AuditLog,
        pseudonyms: PseudonymKeyring,
        sources: Callable[[], Sources | None],
        datasets: Callable[[str], DatasetFacts | None],
        verification_limiter: VerificationLimiter,
        consents: ConsentPort | None = None,
        identity: IdentityProviders | None = None,
        notifications: Notifications | None = None,
        party_name: Callable[[str], str] = lambda party_id: party_id,
        attester: Attester | None = None,
        previews: PreviewPort | None = None,
        preview_required: Callable[[str, str], bool] = lambda agreement_id, flow_id: False,
        preview_ttl_seconds: int = 7 * 86400,
        test_range_only: bool = False,
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
        self._previews = previews
        self._preview_required = preview_required
        self._preview_ttl = preview_ttl_seconds
        self._test_range_only = test_range_only
        self._now = now

    # -- steps before the decision (not logged: nothing was decided) ----------------------------

    def _subject(self, request: ExchangeRequest) -> SubjectId:
        problems = problems_of(request)
        subject: SubjectId | None = None
        try:
            subject = parse_subject(
                request.subject.type, request.subject.value, test_range_only=self._test_range_only
            )
        except InvalidInput as e:
            problems.extend(e.problems)
        facts = self._datasets(request.dataset)
        if subject is not None and facts is not None and subject.type not in facts.subject_types:
            problems.append(
                FieldProblem(
                    "subject.type",
                    f"dataset {request.dataset} accepts {', '.join(sorted(facts.subject_types))}",
                )
            )
        if problems or subject is None:
            raise InvalidInput("the sharing request is not valid", problems)
        return subject

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
        caller, subject, pseudonym, user_id, role, verified, decision = await to_thread.run_sync(
            self._prepare, who, request, now
        )
        entry = self._entry(caller, request, pseudonym, decision, now, user_id, role, verified)

        if (
            decision.allow
            and request.mode == "attest"
            and (set(decision.released_fields) != set(ATTESTED_FIELDS) or self._attester is None)
        ):
            # An attestation states every fact or none: refuse rather than attest half.
            decision = replace(
                decision,
                allow=False,
                reasons=(*decision.reasons, "the agreement does not permit every attested fact"),
                caller_reasons=("the agreement does not permit every attested fact",),
            )
            entry = self._entry(caller, request, pseudonym, decision, now, user_id, role, verified)
        if not decision.allow:
            unavailable = ENGINE_UNAVAILABLE in decision.reasons
            appended = await self._append(entry, None, started)
            if unavailable:
                raise Unavailable(
                    "the policy engine is unavailable: nothing was released"
                ).with_extra(exchange_id=appended.exchange_id)
            raise Refused("the request is not permitted").with_extra(
                exchange_id=appended.exchange_id, reasons=list(decision.caller_reasons)
            )

        matched = decision.matched
        if matched is not None and self._preview_required(matched.agreement_id, matched.flow_id):
            held = await self._preview_gate(caller, request, subject, pseudonym, decision, entry)
            if held is not None:
                appended = await self._append(
                    replace(entry, details={**(entry.details or {}), "preview": "held"}),
                    None,
                    started,
                )
                return ExchangeResult(
                    appended.exchange_id, decision, None, None, appended, None, held
                )
            entry = replace(
                entry,
                details={
                    **(entry.details or {}),
                    "preview": "approved",
                    "preview_of": request.preview_id,
                },
            )

        sources = self._sources()
        record: dict[str, Any] | None = None
        match: bool | None = None
        attestations: list[dict[str, Any]] | None = None
        document: AsyncIterator[bytes] | None = None
        try:
            if sources is None:
                raise Unavailable("no source systems are configured")
            if request.mode == "verify":
                match = await sources.verify(request.dataset, subject, dict(request.claims or {}))
                released_value: Any = {"match": match}
            elif request.mode == "document":
                sha256 = request.document_sha256 or ""
                # The adapter checks the content against its hash before the first chunk:
                # pull it now so that a missing or altered document is answered (and logged)
                # before any byte leaves.
                chunks = sources.stream_document(request.dataset, subject, sha256)
                try:
                    first = await chunks.__anext__()
                except StopAsyncIteration:
                    first = b""
                document = _prepend(first, chunks)
                released_value = {"document.sha256": sha256}
            elif request.mode == "attest":
                fetched = await sources.fetch(request.dataset, subject, ATTESTED_FIELDS)
                attestations = self._attest(fetched, decision, entry, pseudonym, caller, now)
                released_value = attestations
            else:
                fetched = await sources.fetch(request.dataset, subject, decision.released_fields)
                record = project(fetched, decision.released_fields)
                released_value = record
        except SubjectNotFound as e:
            appended = await self._append(entry, "not_found", started)
            e.with_extra(exchange_id=appended.exchange_id)
            raise
        except (SourceError, Unavailable, ConfigurationError) as e:
            # ConfigurationError: no source bound to this dataset (an operator must fix it).
            outcome = "timeout" if isinstance(e, SourceTimeout) else "error"
            appended = await self._append(entry, outcome, started)
            log.warning("source failed", dataset=request.dataset, error=type(e).__name__)
            e.with_extra(exchange_id=appended.exchange_id)
            raise
        released = digest_released_record(released_value)
        extras = self._notification(caller, request, entry, decision, subject, role)
        appended = await self._append(entry, "ok", started, released, extras)
        if extras and self._notifications is not None:
            self._notifications.wake()
        return ExchangeResult(
            appended.exchange_id,
            decision,
            record,
            match,
            appended,
            attestations,
            document=document,
            document_sha256=request.document_sha256,
        )

    async def _preview_gate(
        self,
        caller: Caller,
        request: ExchangeRequest,
        subject: SubjectId,
        pseudonym: Pseudonym,
        decision: Decision,
        entry: AuditEntry,
    ) -> HeldExchange | None:
        """Hold a new request for the citizen (returns the hold), or let through a request that
        names an approval the citizen gave for exactly this (returns None; spends it).
        Raises Refused (logged) for anything else."""
        previews = self._previews
        matched = decision.matched
        if previews is None or matched is None:
            raise Unavailable("the citizen preview is not configured: nothing was released")
        if request.preview_id is None:
            return await to_thread.run_sync(
                lambda: previews.hold(
                    exchange_id=entry.exchange_id,
                    subject=pseudonym,
                    requester_party=caller.party_id,
                    agreement_id=matched.agreement_id,
                    dataset=request.dataset,
                    purpose=request.purpose,
                    fields=decision.released_fields,
                    ttl_seconds=self._preview_ttl,
                )
            )
        preview_id = request.preview_id
        reason: str | None = None
        try:
            held = await to_thread.run_sync(previews.status, preview_id)
        except NotFound:
            held = None
            reason = f"no held exchange {preview_id}"
        if held is not None:
            mine = {p.value for p in self._pseudonyms.all_pseudonyms(subject.type, subject.value)}
            if (
                held.requester_party != caller.party_id
                or held.agreement_id != matched.agreement_id
                or held.dataset != request.dataset
                or held.purpose != request.purpose
                or held.subject_pseudonym not in mine
                or not set(decision.released_fields) <= set(held.fields)
            ):
                reason = f"preview {preview_id} was for another request"
            elif held.status == "released":
                reason = f"the approval of preview {preview_id} has been used already"
            elif held.status != "approved":
                reason = f"the citizen has not approved this exchange (it is {held.status})"
            elif not await to_thread.run_sync(previews.release, preview_id):
                reason = f"the approval of preview {preview_id} has been used already"
        if reason is None:
            return None
        refused = replace(
            decision,
            allow=False,
            reasons=(*decision.reasons, reason),
            caller_reasons=(reason,),
        )
        denied = replace(
            entry, decision="deny", reasons=refused.reasons, released_fields=(), obligations=()
        )
        appended = await self._append(denied, None, time.perf_counter())
        raise Refused("the request is not permitted").with_extra(
            exchange_id=appended.exchange_id, reasons=[reason]
        )

    def _attest(
        self,
        fetched: dict[str, Any],
        decision: Decision,
        entry: AuditEntry,
        pseudonym: Pseudonym,
        caller: Caller,
        now: dt.datetime,
    ) -> list[dict[str, Any]]:
        if self._attester is None or decision.matched is None:  # checked before the fetch
            raise Unavailable("attestations are not configured")
        documents = fetched.get("document")
        if isinstance(documents, dict):
            documents = [documents]
        out = []
        for doc in documents or []:
            facts = document_facts(SimpleNamespace(**doc), decision.matched.provider)
            attestation = self._attester.attest(
                subject=pseudonym,
                document=facts,
                exchange_id=entry.exchange_id,
                recipient_party=caller.party_id,
                agreement_id=decision.matched.agreement_id,
                now=now,
            )
            out.append(attestation.to_json())
        return out

    def _prepare(
        self, who: Caller | Callable[[], Caller], request: ExchangeRequest, now: dt.datetime
    ) -> tuple[Caller, SubjectId, Pseudonym, str, str, bool, Decision]:
        """Everything before the decision, in order. Blocking: runs in a worker thread."""
        caller = who if isinstance(who, Caller) else who()
        subject = self._subject(request)
        pseudonym = self._pseudonyms.pseudonymise(subject.type, subject.value)
        if request.mode == "verify":
            self._verify_limit.take(caller.client_id, pseudonym.value, int(now.timestamp() * 1000))
        user_id, role, verified, decision = self._decide(caller, request, subject, now)
        return caller, subject, pseudonym, user_id, role, verified, decision

    def _decide(
        self, caller: Caller, request: ExchangeRequest, subject: SubjectId, now: dt.datetime
    ) -> tuple[str, str, bool, Decision]:
        """The person behind the request, the subject's consent (only where an agreement for the
        dataset asks for it) and the decision. Blocking: runs in a worker thread."""
        user_id, role, verified = self._person(caller, request, now)
        facts = self._datasets(request.dataset)
        consent: ConsentStatus = "none"
        if facts is not None and (
            request.agreement_id is None or request.agreement_id in facts.consent_agreements
        ):
            every_version = tuple(
                p.value for p in self._pseudonyms.all_pseudonyms(subject.type, subject.value)
            )
            query = ConsentQuery(
                facts.owner,
                caller.party_id,
                request.purpose,
                request.dataset,
                subject_pseudonyms=every_version,
            )
            consent = self._consents.status(query, now)
        policy_input = build_input(
            PolicyRequest(
                client_id=caller.client_id,
                party=caller.party_id,
                user_id=user_id,
                user_role=role,
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
            ),
            now,
        )
        return user_id, role, verified, self._policy.decide(policy_input)

    def _person(
        self, caller: Caller, request: ExchangeRequest, now: dt.datetime
    ) -> tuple[str, str, bool]:
        """The person behind the request: as asserted by the partner system, or, where the
        party has an identity provider and a token is sent (or required), as verified."""
        asserted = request.requested_by
        if self._identity is None:
            return asserted.user_id, asserted.role, False
        verified = self._identity.check_request(
            caller.party_id,
            caller.client_id,
            asserted.id_token,
            break_glass=request.break_glass,
            now=now.timestamp(),
            asserted_role=asserted.role,
        )
        if verified is None:
            return asserted.user_id, asserted.role, False
        return verified.user_id, verified.role, True

    def _notification(
        self,
        caller: Caller,
        request: ExchangeRequest,
        entry: AuditEntry,
        decision: Decision,
        subject: SubjectId,
        role: str,
    ) -> list[Callable[[Connection], None]]:
        """The outbox row telling the provider, written in the audit entry's transaction."""
        provider = decision.obligations.notify_provider
        if provider is None or self._notifications is None or decision.matched is None:
            return []
        notice = ProviderNotice(
            exchange_id=entry.exchange_id,
            provider_party=provider,
            occurred_at_ms=entry.time_ms,
            agreement_id=decision.matched.agreement_id,
            flow_id=decision.matched.flow_id,
            purpose=request.purpose,
            dataset=request.dataset,
            requesting_party=caller.party_id,
            requesting_client=caller.client_id,
            requester_role=role,
            break_glass=request.break_glass,
            released_fields=decision.released_fields,
            subject_pseudonym=entry.subject,
            summary=default_summary(
                caller.client_name or caller.client_id,
                self._party_name(caller.party_id),
                request.dataset,
            ),
        )
        # The provider holds the record under this identifier already (see broker.notify).
        return [self._notifications.writer(notice, subject=subject)]

    def _entry(
        self,
        caller: Caller,
        request: ExchangeRequest,
        pseudonym: Pseudonym,
        decision: Decision,
        now: dt.datetime,
        user_id: str,
        role: str,
        verified: bool,
    ) -> AuditEntry:
        matched = decision.matched
        agreement = None
        if matched is not None:
            agreement = AgreementRef(
                matched.agreement_id, str(matched.agreement_version), matched.agreement_digest
            )
        elif request.agreement_id is not None:
            agreement = AgreementRef(request.agreement_id, "", "")
        o = decision.obligations
        obligations: list[Any] = []
        if o.notify_provider:
            obligations.append({"notify_provider": o.notify_provider})
        if o.retain_until:
            obligations.append({"retain_until": o.retain_until.isoformat()})
        if o.review_break_glass:
            obligations.append({"review_break_glass": True})
        if o.subject_access_hold_until:
            obligations.append(
                {"subject_access_hold_until": o.subject_access_hold_until.isoformat()}
            )
        requested = tuple(request.fields) if request.fields is not None else ()
        if request.mode == "verify":
            requested = tuple(sorted(request.claims or {}))
        return AuditEntry(
            kind="exchange",
            time_ms=int(now.timestamp() * 1000),
            client_id=caller.client_id,
            party_id=caller.party_id,
            user_id=user_id,
            user_role=role,
            agreement=agreement,
            purpose=request.purpose,
            lawful_basis=matched.lawful_basis if matched else (),
            dataset=request.dataset,
            subject=pseudonym,
            requested_fields=requested,
            released_fields=decision.released_fields,
            withheld_fields=tuple(
                WithheldField(w.field, w.reason) for w in decision.withheld_fields
            ),
            decision="allow" if decision.allow else "deny",
            reasons=decision.reasons,
            break_glass=request.break_glass,
            justification=request.justification,
            case_reference=request.case_reference,
            obligations=tuple(obligations),
            policy_revision=decision.revision,
            details={"mode": request.mode, "user_verified": verified},
        )

    async def _append(
        self,
        entry: AuditEntry,
        outcome: str | None,
        started: float,
        released: ReleasedDigest | None = None,
        extras: Sequence[Callable[[Connection], None]] = (),
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
