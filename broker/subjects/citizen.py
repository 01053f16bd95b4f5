"""The citizen behind a citizen-facing system's request, proven by the citizen's own token.

A citizen-facing system (the council's portal, scope ``subject-access``) reads an access report,
lists held previews and decides them only with a citizen token (a citizen's ID token exchanged
at ``POST /oauth2/token``, broker/identity/citizen_exchange.py), and only for the person that
token names. The portal's own token alone is refused, as is a question about anyone else; each
refusal is logged (an ``audit-read`` entry with ``decision: deny``, the subject's pseudonym
where one was named, never the identifier).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from broker.audit.entry import AuditEntry
from broker.audit.memory import AuditSink
from broker.auth.tokens import TokenCitizen
from broker.core.errors import Forbidden
from broker.core.identifiers import SubjectId
from broker.core.pseudonym import PseudonymKeyring

CITIZEN_NEEDED: Final = (
    "a citizen's own verified identity is needed: exchange the citizen's ID token at /oauth2/token"
)
ANOTHER_PERSON: Final = "the citizen's token names another person: a citizen sees only their own"


class CitizenRequired(Forbidden):
    title = "Citizen identity required"


class NotThisCitizen(Forbidden):
    title = "Not this citizen"


def covered_subject(citizen: TokenCitizen | None, subject: SubjectId | None) -> SubjectId:
    """The subject a citizen's request is about: ``subject`` when the token names it, else the
    token's own (first) identifier when none was named. Raises CitizenRequired (no citizen
    token), NotThisCitizen (``subject`` is someone else)."""
    if citizen is None:
        raise CitizenRequired(CITIZEN_NEEDED)
    if subject is None:
        id_type, value = citizen.identifiers[0]
        return SubjectId(id_type, value)  # type: ignore[arg-type]
    if (subject.type, subject.value) not in citizen.identifiers:
        raise NotThisCitizen(ANOTHER_PERSON)
    return subject


def log_refusal(
    audit: AuditSink,
    pseudonyms: PseudonymKeyring,
    *,
    resource: str,
    reason: str,
    client_id: str,
    party_id: str,
    citizen: TokenCitizen | None,
    subject: SubjectId | None,
    now_ms: int,
    extra: dict[str, str] | None = None,
) -> None:
    """Log a refused citizen request (never the identifier in clear)."""
    named = None if subject is None else pseudonyms.pseudonymise(subject.type, subject.value)
    details: dict[str, str] = {"resource": resource, "refused": reason, **(extra or {})}
    if citizen is not None:
        details["citizen_issuer"] = citizen.issuer
    if subject is not None:
        details["subject_type"] = subject.type
    audit.append(
        AuditEntry(
            kind="audit-read",
            time_ms=now_ms,
            client_id=client_id,
            party_id=party_id,
            user_id=None if citizen is None else citizen.subject,
            subject=named,
            decision="deny",
            reasons=(reason,),
            details=details,
        )
    )


def guarded(
    check: Callable[[], SubjectId],
    log: Callable[[str], None],
) -> SubjectId:
    """Run ``check``; log and re-raise a refusal."""
    try:
        return check()
    except (CitizenRequired, NotThisCitizen) as e:
        log(e.detail)
        raise
