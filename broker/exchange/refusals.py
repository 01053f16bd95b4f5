"""A break-glass attempt refused before the policy decided, any request whose requested_by
disagrees with its user-restricted token, any request by a suspended user, and any verification
answer withheld by the limits per record: a denied exchange in the log whose reason names the
refusing stage (docs/exchanges.md, "Refused break-glass attempts" and "Verification limits").
Pure."""

from __future__ import annotations

import datetime as dt

from broker.audit.entry import AgreementRef, AuditEntry
from broker.core.errors import AuthError, BrokerError, Conflict, InvalidInput, TooManyRequests
from broker.core.identifiers import Caller, parse_subject
from broker.core.pseudonym import Pseudonym, PseudonymKeyring
from broker.exchange.entries import Person, requested_fields
from broker.exchange.limits import RateLimited
from broker.exchange.person import UserMismatch
from broker.exchange.request import ExchangeRequest
from broker.exchange.suspensions import UserSuspended
from broker.identity.errors import IdentityProviderUnavailable, IdTokenError, IdTokenRequired


def subject_pseudonym(
    request: ExchangeRequest, pseudonyms: PseudonymKeyring, *, test_range_only: bool
) -> Pseudonym | None:
    """The subject's pseudonym where its identifier is valid (so the citizen's report lists
    the attempt), else None."""
    try:
        subject = parse_subject(
            request.subject.type, request.subject.value, test_range_only=test_range_only
        )
    except BrokerError:
        return None
    return pseudonyms.pseudonymise(subject.type, subject.value)


def refusal_stage(error: BrokerError) -> str:
    """The stage that refused a request, named for the log (no personal data)."""
    if isinstance(error, IdTokenRequired):
        return "ID token required and absent"
    if isinstance(error, IdTokenError):
        return f"ID token not accepted ({error.reason})"
    if isinstance(error, IdentityProviderUnavailable):
        return "identity provider unavailable"
    if isinstance(error, RateLimited | TooManyRequests):
        limit = error.extra.get("limit")
        return f"verification limit ({limit})" if limit else "rate limit"
    if isinstance(error, UserSuspended):
        return "user suspended by their party"
    if isinstance(error, UserMismatch):
        places = sorted({p.location for p in error.problems})
        return f"requested_by disagrees with the user-restricted token ({', '.join(places)})"
    if isinstance(error, InvalidInput):
        places = sorted({p.location for p in error.problems})
        return "request not valid" + (f" ({', '.join(places)})" if places else "")
    if isinstance(error, Conflict):
        return "idempotency key"
    if isinstance(error, AuthError):
        return "client not permitted"
    return type(error).__name__


def refused_entry(
    *,
    caller: Caller,
    request: ExchangeRequest,
    error: BrokerError,
    now: dt.datetime,
    pseudonym: Pseudonym | None = None,
    person: Person | None = None,
) -> AuditEntry:
    """A break-glass attempt refused before the policy decided: a denied exchange whose reason
    names the refusing stage. The user is the verified one where the ID token passed, else the
    asserted one (marked unverified), else the system itself; ``details.user_assurance`` says
    which."""
    asserted = request.requested_by
    user = caller.user
    if person is not None:
        user_id, role = person.user_id, person.role
    elif user is not None:
        # A user-restricted token: its user, and a role it gives (never the body's).
        wanted = asserted.role if asserted else None
        one = user.roles[0] if len(user.roles) == 1 else ""
        user_id, role = user.subject, wanted if wanted in user.roles else one
    elif asserted is None:
        user_id, role = caller.client_id, ""  # no person: the system asks for itself
    else:
        user_id, role = asserted.user_id or "", asserted.role or ""
    verified = bool(person and person.verified) or user is not None
    issuer = user.issuer if user is not None else person.issuer if person is not None else None
    if person is not None:
        assurance = person.assurance
    elif user is not None:
        assurance = "verified"
    else:
        assurance = "asserted" if asserted is not None else "system"
    prefix = "break-glass refused" if request.break_glass else "refused"
    return AuditEntry(
        kind="exchange",
        time_ms=int(now.timestamp() * 1000),
        client_id=caller.client_id,
        party_id=caller.party_id,
        user_id=user_id,
        user_role=role,
        agreement=None
        if request.agreement_id is None
        else AgreementRef(request.agreement_id, "", ""),
        purpose=request.purpose,
        dataset=request.dataset,
        subject=pseudonym,
        requested_fields=requested_fields(request),
        decision="deny",
        reasons=(f"{prefix}: {refusal_stage(error)}",),
        break_glass=request.break_glass,
        justification=request.justification,
        case_reference=request.case_reference,
        source_outcome="not_fetched",
        details={
            "mode": request.mode,
            "user_verified": verified,
            "user_assurance": assurance,
            **({"user_issuer": issuer} if issuer is not None else {}),
            "refused_at": type(error).__name__,
        },
    )
