"""The audit entry of one decided exchange (and of a subject not found at the source), and the
notice to the provider written in its transaction. Pure: the service appends them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from broker.audit.entry import AgreementRef, AuditEntry
from broker.core.identifiers import Caller
from broker.core.pseudonym import Pseudonym
from broker.exchange.request import ExchangeRequest
from broker.notify.notice import ProviderNotice, default_summary
from broker.policy.engine import Decision, obligations_json
from broker.policy.input import Assurance


@dataclass(frozen=True, kw_only=True)
class Person:
    """The person behind the request: ``assurance`` says how it is known.

    - ``verified``: from a user-restricted token, or a checked ID token;
    - ``asserted``: ``requested_by`` on the partner system's word;
    - ``system``: no person (no ``requested_by``, no user token): the system asks for itself,
      ``user_id`` is its client id and ``role`` is "".
    """

    user_id: str
    role: str
    assurance: Assurance
    issuer: str | None = None
    """The identity provider that verified the user (logged with the user's subject)."""

    @property
    def verified(self) -> bool:
        return self.assurance == "verified"

    @property
    def key(self) -> str:
        """Who this person is, for a citizen preview bound to the requester: the subject at its
        identity provider when verified (the same subject at two providers is two people), else
        how the system named it. A verified user's approval is never usable by an asserted user of
        the same name, nor by a user of another provider."""
        if self.verified and self.issuer is not None:
            return f"{self.user_id} @ {self.issuer}"
        return f"{self.user_id} ({self.assurance})"

    def details(self) -> dict[str, object]:
        """What the audit entry's details say of the person (``user_assurance`` marks asserted
        and system entries in the log)."""
        out: dict[str, object] = {
            "user_verified": self.verified,
            "user_assurance": self.assurance,
        }
        if self.issuer is not None:
            out["user_issuer"] = self.issuer
        return out


def exchange_entry(
    *,
    caller: Caller,
    person: Person,
    decision: Decision,
    pseudonym: Pseudonym,
    request: ExchangeRequest,
    now: dt.datetime,
) -> AuditEntry:
    """The entry of a decided exchange (its source outcome and digest are added at append)."""
    matched = decision.matched
    agreement = None
    if matched is not None:
        agreement = AgreementRef(
            matched.agreement_id, str(matched.agreement_version), matched.agreement_digest
        )
    elif request.agreement_id is not None:
        agreement = AgreementRef(request.agreement_id, "", "")
    # The entry's obligations: one object per obligation that applies, in the order of
    # obligations_json (the format of every logged entry: it must not change).
    obligations = tuple(
        {name: value} for name, value in obligations_json(decision.obligations).items() if value
    )
    return AuditEntry(
        kind="exchange",
        time_ms=int(now.timestamp() * 1000),
        client_id=caller.client_id,
        party_id=caller.party_id,
        user_id=person.user_id,
        user_role=person.role,
        agreement=agreement,
        purpose=request.purpose,
        lawful_basis=matched.lawful_basis if matched else (),
        dataset=request.dataset,
        subject=pseudonym,
        requested_fields=requested_fields(request),
        released_fields=decision.released_fields,
        withheld_fields=decision.withheld_fields,
        decision="allow" if decision.allow else "deny",
        reasons=decision.reasons,
        break_glass=request.break_glass,
        justification=request.justification,
        case_reference=request.case_reference,
        obligations=obligations,
        policy_revision=decision.revision,
        details={"mode": request.mode, **person.details()},
    )


def not_found_entry(entry: AuditEntry) -> AuditEntry:
    """The source holds no such subject: an outcome of its own, nothing released."""
    return replace(entry, decision="not_found", released_fields=())


def requested_fields(request: ExchangeRequest) -> tuple[str, ...]:
    if request.mode == "verify":
        return tuple(sorted(request.claims or {}))
    return tuple(request.fields) if request.fields is not None else ()


def provider_notice(
    *,
    entry: AuditEntry,
    caller: Caller,
    person: Person,
    decision: Decision,
    request: ExchangeRequest,
    party_name: str,
) -> ProviderNotice | None:
    """The notice telling the provider (the flow says to), or None."""
    provider = decision.obligations.notify_provider
    if provider is None or decision.matched is None:
        return None
    return ProviderNotice(
        exchange_id=entry.exchange_id,
        provider_party=provider,
        occurred_at_ms=entry.time_ms,
        agreement_id=decision.matched.agreement_id,
        flow_id=decision.matched.flow_id,
        purpose=request.purpose,
        dataset=request.dataset,
        requesting_party=caller.party_id,
        requesting_client=caller.client_id,
        requester_role=person.role,
        break_glass=request.break_glass,
        released_fields=decision.released_fields,
        subject_pseudonym=entry.subject,
        summary=default_summary(
            caller.client_name or caller.client_id, party_name, request.dataset
        ),
    )
