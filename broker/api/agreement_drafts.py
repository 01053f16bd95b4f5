"""``/v1/agreements/drafts``: agreements written, reviewed and signed through the API.

Only the parties an agreement names see its draft (scope ``governance`` or ``agreements-draft``).
A party signs with its own key through the party-side CLI (``broker agreements sign --draft``),
never in a browser: the broker shows the statement to sign and verifies what is submitted.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from broker.agreements.drafts import MAX_COMMENT, Actor, DraftService, shown_status
from broker.agreements.intake import MAX_YAML_BYTES, yaml_of
from broker.agreements.loader import stored_label
from broker.agreements.register import Register
from broker.api.deps import Principal, ServicesDep, require_scope
from broker.auth.scopes import Scope
from broker.container import Services
from broker.core.errors import InvalidInput

router = APIRouter(prefix="/v1/agreements/drafts", tags=["agreements"])
Drafter = Annotated[
    Principal, Depends(require_scope(Scope.GOVERNANCE.value, Scope.AGREEMENTS_DRAFT.value))
]
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")


class CommentIn(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_COMMENT)


class DpoIn(BaseModel):
    view: str = Field(min_length=1, max_length=8000)
    dpia_reference: str = Field(min_length=1, max_length=200)


class SignatureIn(BaseModel):
    party: str = Field(min_length=1, max_length=100)
    action: str = Field(min_length=1, max_length=10)
    jws: str = Field(min_length=1, max_length=4000)


def _service(services: Services) -> DraftService:
    runtime = services.policy_runtime

    def register() -> Register:
        last = runtime.last
        return last.register if last is not None else Register()

    return DraftService(
        services.engine,
        runtime.store,
        register=register,
        known_parties=runtime.known_parties,
        demo=services.settings.demo,
        now=lambda: dt.datetime.fromtimestamp(services.clock(), dt.UTC),
    )


def _actor(principal: Principal) -> Actor:
    return Actor(principal.client_id, principal.party_id)


def _shown(services: Services, draft: dict[str, Any]) -> dict[str, Any]:
    """``draft`` with the status the policy loaded gives it (in force, superseded)."""
    last = services.policy_runtime.last
    loaded: dict[str, str] = {}
    for item in last.agreements if last is not None else ():
        if item.status.file == stored_label(draft["id"]):
            loaded = {"status": item.status.status, "reasons": " | ".join(item.status.reasons)}
            draft["policy_status"] = item.status.status
            draft["policy_reasons"] = list(item.status.reasons)
    draft["status"] = shown_status(draft["status"], loaded)
    return draft


async def _text(request: Request) -> str:
    """The agreement's YAML: the raw body (``application/yaml``) or JSON ``{"yaml": "..."}`` or
    ``{"agreement": {...}}``. Capped before it is read whole."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_YAML_BYTES + 1024:
        raise InvalidInput(f"the agreement is larger than {MAX_YAML_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_YAML_BYTES + 1024:
            raise InvalidInput(f"the agreement is larger than {MAX_YAML_BYTES} bytes")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidInput("the agreement is not UTF-8 text") from e
    if kind in YAML_TYPES:
        return text
    if kind != "application/json":
        raise InvalidInput(f"send application/json or application/yaml, not {kind or 'nothing'}")
    try:
        data = json.loads(text)
    except ValueError as e:
        raise InvalidInput("the body is not JSON") from e
    if isinstance(data, dict) and isinstance(data.get("yaml"), str):
        return str(data["yaml"])
    if isinstance(data, dict) and isinstance(data.get("agreement"), dict):
        return yaml_of(data["agreement"])
    raise InvalidInput('send {"yaml": "<text>"} or {"agreement": {...}}')


@router.get("", summary="The drafts your party is named in")
def list_drafts(principal: Drafter, services: ServicesDep) -> list[dict[str, Any]]:
    return [_shown(services, d) for d in _service(services).list_for(_actor(principal))]


@router.post("", status_code=201, summary="Write a draft (JSON or a YAML upload)")
async def create_draft(
    request: Request, principal: Drafter, services: ServicesDep
) -> dict[str, Any]:
    text = await _text(request)
    return await run_in_threadpool(_service(services).create, _actor(principal), text)


@router.get("/{draft_id}", summary="One draft: YAML, revisions, comments, DPO view, signatures")
def get_draft(draft_id: str, principal: Drafter, services: ServicesDep) -> dict[str, Any]:
    return _shown(services, _service(services).get(draft_id, _actor(principal)))


@router.get(
    "/{draft_id}/revisions/{revision}",
    response_class=PlainTextResponse,
    summary="The YAML of one revision",
)
def get_revision(
    draft_id: str, revision: int, principal: Drafter, services: ServicesDep
) -> PlainTextResponse:
    text = _service(services).revision_yaml(draft_id, revision, _actor(principal))
    return PlainTextResponse(text, media_type="application/yaml")


@router.post("/{draft_id}/revisions", summary="A new revision of the draft's YAML")
async def revise_draft(
    draft_id: str, request: Request, principal: Drafter, services: ServicesDep
) -> dict[str, Any]:
    text = await _text(request)
    return await run_in_threadpool(_service(services).revise, draft_id, _actor(principal), text)


@router.post("/{draft_id}/comments", summary="A reviewer's comment")
def comment_draft(
    draft_id: str, body: CommentIn, principal: Drafter, services: ServicesDep
) -> dict[str, Any]:
    return _shown(services, _service(services).comment(draft_id, _actor(principal), body.text))


@router.post("/{draft_id}/dpo", summary="Record the DPO's view and the DPIA reference")
def record_dpo(
    draft_id: str, body: DpoIn, principal: Drafter, services: ServicesDep
) -> dict[str, Any]:
    service = _service(services)
    return _shown(
        services, service.record_dpo(draft_id, _actor(principal), body.view, body.dpia_reference)
    )


@router.get("/{draft_id}/statement", summary="The statement a party signs (and its digest)")
def get_statement(
    draft_id: str,
    principal: Drafter,
    services: ServicesDep,
    party: Annotated[str, Query(max_length=100)],
    action: Annotated[str, Query(max_length=10)] = "sign",
) -> dict[str, Any]:
    return _service(services).statement(draft_id, _actor(principal), party, action)


@router.post("/{draft_id}/signatures", summary="Submit a party's signature (sign, renew, revoke)")
def submit_signature(
    draft_id: str, body: SignatureIn, principal: Drafter, services: ServicesDep
) -> dict[str, Any]:
    service = _service(services)
    done = service.submit(draft_id, _actor(principal), body.party, body.action, body.jws)
    return _shown(services, done)
