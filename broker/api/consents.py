"""Consent records over HTTP, and the broker's published attestation keys.

- ``POST /v1/consents`` (scope ``consent``): record a consent; only a system of the party the
  agreement's flow names as recorder may. Answers 201 with the FHIR R4 Consent and a signed
  consent receipt (JWS) for the collecting service to give the citizen.
- ``POST /v1/consents/{id}/withdraw`` (``consent`` or ``subject-access``): withdraw at once.
- ``GET /v1/consents?subject_type=&subject_value=`` (``consent`` or ``subject-access``): the
  subject's consents (each read is logged); ``GET /v1/consents/{id}``: one.
- ``GET /.well-known/attestation-keys.json``: the JWKS that verifies attestations and receipts.
- ``GET /v1/attestations/status-list``: the attestations' signed status list (IETF Token Status
  List, ``application/statuslist+jwt``), public like the keys.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from broker.api.deps import Principal, ServicesDep, require_scope
from broker.attestation.status import MEDIA_TYPE
from broker.consent.model import CollectionMethod
from broker.consent.service import consent_json
from broker.core.errors import FieldProblem, InvalidInput
from broker.core.identifiers import Caller, SubjectId, parse_subject
from broker.subjects.wiring import STATUS_LIST_PATH

router = APIRouter(tags=["consents"])
Recorder = Annotated[Principal, Depends(require_scope("consent"))]
Reader = Annotated[Principal, Depends(require_scope("consent", "subject-access"))]
Name = Annotated[str, Field(min_length=1, max_length=100)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SubjectIn(Body):
    type: Name
    value: Annotated[str, Field(min_length=1, max_length=64)]


class PeriodIn(Body):
    start: dt.datetime | None = None
    """Default: now."""
    end: dt.datetime | None = None
    """Exclusive; absent means until withdrawn."""


class RecordedByIn(Body):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    role: Annotated[str, Field(min_length=1, max_length=200)] | None = None


class ConsentIn(Body):
    agreement_id: Name
    subject: SubjectIn
    from_party: Name
    to_party: Name
    purpose: Name
    datasets: Annotated[list[Name], Field(min_length=1, max_length=20)]
    document_types: Annotated[list[Name], Field(max_length=20)] = []
    period: PeriodIn = PeriodIn()
    collection_method: CollectionMethod
    recorded_by: RecordedByIn
    given_at: dt.datetime | None = None
    """When the person gave it, if before now (on paper); needs ``evidence_reference``."""
    evidence_reference: Annotated[str, Field(min_length=1, max_length=200)] | None = None


class WithdrawalIn(Body):
    reason: Annotated[str, Field(min_length=1, max_length=1000)] | None = None


def query_subject(subject_type: str, subject_value: str) -> SubjectId:
    """A subject named by the ``subject_type`` and ``subject_value`` query parameters; a 422
    names those parameters."""
    try:
        return parse_subject(subject_type, subject_value, location="subject")
    except InvalidInput as e:
        e.problems = [
            FieldProblem(p.location.replace("subject.", "subject_"), p.message) for p in e.problems
        ]
        raise


def _caller(principal: Principal) -> Caller:
    return Caller(principal.client_id, principal.party_id, principal.scopes)


@router.post(
    "/v1/consents",
    status_code=201,
    summary="Record a citizen's consent (FHIR R4 Consent) and get a signed receipt",
)
async def record_consent(
    body: ConsentIn, principal: Recorder, services: ServicesDep
) -> JSONResponse:
    subject = parse_subject(body.subject.type, body.subject.value)
    naive = [
        FieldProblem(name, "must carry a time zone")
        for name, value in (
            ("period.start", body.period.start),
            ("period.end", body.period.end),
            ("given_at", body.given_at),
        )
        if value is not None and value.tzinfo is None
    ]
    if naive:
        raise InvalidInput("times need a zone", naive)
    recorded = await run_in_threadpool(
        lambda: services.subjects.consents.record(
            _caller(principal),
            agreement_id=body.agreement_id,
            subject=subject,
            from_party=body.from_party,
            to_party=body.to_party,
            purpose=body.purpose,
            datasets=body.datasets,
            document_types=body.document_types,
            period_start=body.period.start,
            period_end=body.period.end,
            collection_method=body.collection_method,
            recorded_by_name=body.recorded_by.name,
            recorded_by_role=body.recorded_by.role,
            given_at=body.given_at,
            evidence_reference=body.evidence_reference,
        )
    )
    return JSONResponse(
        recorded.to_json(),
        status_code=201,
        headers={"Location": f"/v1/consents/{recorded.record.id}"},
    )


@router.post("/v1/consents/{consent_id}/withdraw", summary="Withdraw a consent at once")
async def withdraw_consent(
    consent_id: str,
    principal: Reader,
    services: ServicesDep,
    body: WithdrawalIn | None = None,
) -> dict[str, Any]:
    reason = body.reason if body else None
    record = await run_in_threadpool(
        services.subjects.consents.withdraw, _caller(principal), consent_id, reason
    )
    return consent_json(record)


@router.get("/v1/consents", summary="A subject's consents (each read is logged)")
async def list_consents(
    principal: Reader,
    services: ServicesDep,
    subject_type: Annotated[str, Query(min_length=1, max_length=40)],
    subject_value: Annotated[str, Query(min_length=1, max_length=64)],
) -> dict[str, Any]:
    subject = query_subject(subject_type, subject_value)
    records = await run_in_threadpool(
        services.subjects.consents.list_for_subject, _caller(principal), subject
    )
    return {"items": [consent_json(r) for r in records]}


@router.get("/v1/consents/{consent_id}", summary="One consent (each read is logged)")
async def get_consent(consent_id: str, principal: Reader, services: ServicesDep) -> dict[str, Any]:
    record = await run_in_threadpool(services.subjects.consents.get, _caller(principal), consent_id)
    return consent_json(record)


@router.get(
    "/.well-known/attestation-keys.json",
    summary="The broker's attestation keys (JWKS): verify attestations and consent receipts",
)
async def attestation_keys(services: ServicesDep) -> dict[str, Any]:
    return services.subjects.attestation.jwks()


@router.get(
    STATUS_LIST_PATH,
    summary="The attestations' status list (signed; a revoked attestation's bit is 1)",
    response_class=Response,
    responses={200: {"content": {MEDIA_TYPE: {}}}},
)
async def attestation_status_list(services: ServicesDep) -> Response:
    subjects = services.subjects
    signed = await run_in_threadpool(subjects.status_list, dt.datetime.now(dt.UTC))
    return Response(signed, media_type=MEDIA_TYPE, headers={"Cache-Control": "no-cache"})
