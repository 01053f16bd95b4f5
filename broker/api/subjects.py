"""The citizen's side over HTTP: the access report and the preview of held exchanges.

- ``GET /v1/subjects/access-report?subject_type=&subject_value=`` (``subject-access`` for the
  citizen portal; ``governance`` for a party's officers, narrowed to the exchanges their
  party asked for or provided; ``oversight`` for everything). Exchanges under a subject-access
  hold are held back from the ``subject-access`` view until the hold ends; officers see them
  marked. Every read is logged, with the held-back exchange ids (the hold itself is on the
  record).
- ``GET /v1/subjects/previews?subject_type=&subject_value=`` and
  ``POST /v1/subjects/previews/{hold_id}/decision`` (``subject-access``): exchanges held for the
  citizen's preview, and the citizen's approve/refuse.

Through the citizen-facing system (the ``subject`` view, and previews) every one of these needs
a citizen token naming the person asked about (broker/subjects/citizen.py): the portal's own
token alone gets 403, so does a question about another person, and a preview about another
person is "not found"; each refusal is logged.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from broker.api.audit import scope_for
from broker.api.consents import SubjectIn, query_subject
from broker.api.deps import Principal, ServicesDep, require_scope
from broker.audit.entry import AuditEntry
from broker.container import Services
from broker.core.errors import FieldProblem, InvalidInput
from broker.core.identifiers import SubjectId, parse_subject
from broker.subjects.citizen import covered_subject, guarded, log_refusal
from broker.subjects.preview import HoldNotFound
from broker.subjects.report import View, build_report, check_personal_identifier

router = APIRouter(prefix="/v1/subjects", tags=["subjects"])
ReportReader = Annotated[
    Principal, Depends(require_scope("subject-access", "governance", "oversight"))
]
Portal = Annotated[Principal, Depends(require_scope("subject-access"))]
SubjectType = Annotated[str, Query(min_length=1, max_length=40)]
SubjectValue = Annotated[str, Query(min_length=1, max_length=64)]


def _view(principal: Principal) -> View:
    # The widest scope decides; a client holding both sees the officers' view.
    if "oversight" in principal.scopes:
        return "oversight"
    if "governance" in principal.scopes:
        return "governance"
    return "subject"


def _citizen_subject(
    services: Services, principal: Principal, subject: SubjectId | None, resource: str
) -> SubjectId:
    """The subject of a citizen's request, proven by the citizen's token (blocking: a refusal
    is logged). Raises CitizenRequired, NotThisCitizen (403)."""

    def log(reason: str) -> None:
        log_refusal(
            services.audit,
            services.subjects.pseudonyms,
            resource=resource,
            reason=reason,
            client_id=principal.client_id,
            party_id=principal.party_id,
            citizen=principal.citizen,
            subject=subject,
            now_ms=int(services.clock() * 1000),
        )

    return guarded(lambda: covered_subject(principal.citizen, subject), log)


def _report(services: Services, principal: Principal, subject: SubjectId) -> dict[str, Any]:
    subjects = services.subjects
    pseudonyms = subjects.pseudonyms.all_pseudonyms(subject.type, subject.value)
    view = _view(principal)
    # The officers' rule (broker/agreements/visibility.py): what their party asked or provided.
    scope = scope_for(principal, services) if view == "governance" else None
    now_ms = int(services.clock() * 1000)
    report = build_report(
        services.engine,
        pseudonyms=[p.value for p in pseudonyms],
        view=view,
        holds=subjects.hold_rules(),
        now_ms=now_ms,
        scope=scope,
        party_names={p.id: p.name for p in services.registry.list_parties()},
    )
    # The read is recorded before the answer leaves, with what the citizen did not see.
    services.audit.append(
        AuditEntry(
            kind="audit-read",
            time_ms=now_ms,
            client_id=principal.client_id,
            party_id=principal.party_id,
            user_id=None if principal.citizen is None else principal.citizen.subject,
            subject=pseudonyms[-1],
            details={
                "resource": "access-report",
                "view": view,
                "subject_type": subject.type,
                "exchanges_shown": len(report.exchanges),
                "held_back": [
                    {"exchange_id": h["exchange_id"], "until": h["held_back_until"]}
                    for h in report.held_back
                ],
            },
        )
    )
    return {"subject_type": subject.type, "view": view, **report.to_json(view)}


@router.get("/access-report", summary="Every exchange about one person (each read is logged)")
async def access_report(
    principal: ReportReader,
    services: ServicesDep,
    subject_type: SubjectType,
    subject_value: SubjectValue,
) -> dict[str, Any]:
    check_personal_identifier(subject_type)
    subject = query_subject(subject_type, subject_value)
    if _view(principal) == "subject":
        await run_in_threadpool(_citizen_subject, services, principal, subject, "access-report")
    return await run_in_threadpool(_report, services, principal, subject)


@router.get("/previews", summary="Exchanges held for this citizen's preview")
async def pending_previews(
    principal: Portal,
    services: ServicesDep,
    subject_type: SubjectType,
    subject_value: SubjectValue,
) -> dict[str, Any]:
    subject = query_subject(subject_type, subject_value)
    await run_in_threadpool(_citizen_subject, services, principal, subject, "previews")
    pseudonyms = services.subjects.pseudonyms.all_pseudonyms(subject.type, subject.value)
    held = await run_in_threadpool(
        services.subjects.previews.pending_for, [p.value for p in pseudonyms]
    )
    return {"items": [h.to_json() for h in held]}


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["approve", "refuse"]
    subject: SubjectIn | None = None
    """The citizen (optional: the citizen token names them; where sent, it must agree)."""


@router.post("/previews/{hold_id}/decision", summary="The citizen approves or refuses")
async def decide_preview(
    hold_id: str, body: DecisionIn, principal: Portal, services: ServicesDep
) -> dict[str, Any]:
    named = None if body.subject is None else parse_subject(body.subject.type, body.subject.value)
    if named is not None and named.type not in ("nhs_number", "person_id"):
        raise InvalidInput(
            "a preview is decided by the person", [FieldProblem("subject.type", "not a person")]
        )
    subject = await run_in_threadpool(
        _citizen_subject, services, principal, named, "preview-decision"
    )
    pseudonyms = services.subjects.pseudonyms.all_pseudonyms(subject.type, subject.value)

    def decide() -> dict[str, Any]:
        try:
            held = services.subjects.previews.decide(
                hold_id,
                approve=body.decision == "approve",
                pseudonyms=[p.value for p in pseudonyms],
                client_id=principal.client_id,
                user_id=None if principal.citizen is None else principal.citizen.subject,
            )
        except HoldNotFound as e:
            # Unknown, or about someone else: the same answer, and logged.
            log_refusal(
                services.audit,
                services.subjects.pseudonyms,
                resource="preview-decision",
                reason="no held exchange of this citizen",
                client_id=principal.client_id,
                party_id=principal.party_id,
                citizen=principal.citizen,
                subject=subject,
                now_ms=int(services.clock() * 1000),
                extra={"hold_id": hold_id[:64]},
            )
            raise e
        return held.to_json()

    return await run_in_threadpool(decide)
