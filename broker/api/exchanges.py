"""``POST /v1/exchanges``: a partner system's sharing request, and the HTTP shapes of its answers
(docs/exchanges.md)."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from broker.api.deps import (
    BEARER_SECURITY,
    PendingPrincipal,
    Principal,
    ServicesDep,
    get_services,
    pending_scope,
    require_scope,
)
from broker.api.problems import PROBLEM_JSON, problem_body
from broker.core.errors import BrokerError, NotFound
from broker.core.identifiers import Caller, CallerUser
from broker.exchange.idempotency import StoredAnswer
from broker.exchange.limits import RateLimited
from broker.exchange.ports import Appended, ExchangeResult
from broker.exchange.request import ExchangeRequest
from broker.policy.engine import decision_json

router = APIRouter(tags=["exchanges"])
Exchanger = Annotated[Principal, Depends(require_scope("exchange"))]
#: The same checks as ``Exchanger``; the registry half runs in the exchange's first hand-off.
PendingExchanger = Annotated[PendingPrincipal, Depends(pending_scope("exchange"))]

_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"description": "held for the citizen's preview (logged), with a status URL"},
    403: {"description": "refused by policy (logged); reasons in full to parties of the agreement"},
    404: {"description": "subject not found at the source (logged)"},
    422: {"description": "malformed request, every bad field named"},
    429: {"description": "over the client's rate (Retry-After), or the verification limit"},
    502: {"description": "the source system failed (logged)"},
    503: {"description": "engine, log or database unavailable: nothing released"},
    504: {"description": "the source system timed out (logged)"},
}


@router.post(
    "/v1/exchanges",
    summary="Ask for a person's record (or a yes/no on one claim set) under an agreement",
    responses=_RESPONSES,
    openapi_extra=BEARER_SECURITY,
)
async def create_exchange(
    body: ExchangeRequest,
    request: Request,
    pending: PendingExchanger,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> Response:
    services = get_services(request)
    client_id = pending.claims.client_id  # verified token; the registry check comes next

    token_user = pending.claims.user

    def check_caller() -> Caller:
        principal = pending.check()
        return Caller(
            client_id=principal.client_id,
            party_id=principal.party_id,
            client_name=principal.client.name,
            roles=principal.client.roles,
            user=None
            if token_user is None
            else CallerUser(token_user.issuer, token_user.subject, token_user.roles),
        )

    try:
        if services.rate_limiter.shared:  # a round trip to Redis: off the event loop
            await run_in_threadpool(services.rate_limiter.take, client_id)
        else:
            services.rate_limiter.take(client_id)
    except RateLimited as e:
        if body.break_glass:  # a refused break-glass attempt is logged, whatever refused it
            await services.exchanges.log_refused(check_caller, body, e)
        raise

    # The registry check runs in the exchange's first worker-thread hand-off (before anything
    # else in it); with a key, in the key's claim (it passes before a stored answer is replayed).
    if idempotency_key is None:
        return _response(await services.exchanges.handle(check_caller, body))
    answered = await services.once_only.handle(
        check_caller,
        body,
        client_id=client_id,
        key=idempotency_key,
        body=await request.body(),
        shapes=_Shapes(str(request.scope["state"]["request_id"])),
    )
    if answered.replayed and answered.answer is not None:
        stored = answered.answer
        media = PROBLEM_JSON if stored.status_code >= 400 else "application/json"
        return JSONResponse(
            stored.body,
            status_code=stored.status_code,
            media_type=media,
            headers={"Idempotent-Replayed": "true"},
        )
    if answered.result is None or answered.answer is None:  # a streamed document
        assert answered.result is not None
        return _response(answered.result)
    return JSONResponse(answered.answer.body, status_code=answered.answer.status_code)


@router.get(
    "/v1/exchanges/{exchange_id}/preview",
    summary="The status of an exchange held for the citizen's preview (its asking system polls)",
)
async def preview_status(
    exchange_id: str, principal: Exchanger, services: ServicesDep
) -> dict[str, Any]:
    held = await run_in_threadpool(services.subjects.previews.status, exchange_id)
    # Only the system that asked sees its hold (a hold from before requesters were recorded:
    # any system of its party).
    asker = held.requester_client
    if held.requester_party != principal.party_id or asker not in (None, principal.client_id):
        raise NotFound(f"exchange {exchange_id} is not held for preview")
    return held.to_json()


# -- what the clients receive (HTTP shapes of the service's results) ------------------------------


def receipt_json(appended: Appended) -> dict[str, object]:
    """The receipt part of an exchange answer: ``broker audit check-receipt`` checks it offline
    as it is when the checkpoint is there, and says what to fetch while it is pending."""
    salt = appended.record_salt
    proof = appended.inclusion_proof
    return {
        "exchange_id": appended.exchange_id,
        "leaf_index": appended.leaf_index,
        "leaf_hash": appended.leaf_hash.hex(),
        "record_salt": None if salt is None else base64.b64encode(salt).decode(),
        "checkpoint": None if appended.checkpoint is None else appended.checkpoint.note,
        "inclusion_proof": None if proof is None else [h.hex() for h in proof],
        "pending": {
            "checkpoint_url": "/v1/audit/checkpoint",
            "inclusion_proof_url": f"/v1/audit/proof/inclusion?exchange_id={appended.exchange_id}",
            "covered_by_tree_size_at_most": appended.next_checkpoint_size,
        },
    }


def answer_json(result: ExchangeResult) -> dict[str, Any]:
    """The JSON answer: 202 (held for the citizen's preview) or 200."""
    exchange_id = result.exchange_id
    if result.held is not None:
        return {
            "exchange_id": exchange_id,
            "status": "held",
            "detail": "held until the citizen approves it through the council's portal",
            "status_url": f"/v1/exchanges/{exchange_id}/preview",
            "expires_at_ms": result.held.expires_at_ms,
            "then": "when approved, send the same request again with "
            f'"preview_id": "{exchange_id}"',
            "receipt": receipt_json(result.appended),
        }
    full = decision_json(result.decision)
    o = full["obligations"]
    decision: dict[str, Any] = {
        "allow": full["allow"],
        "released_fields": full["released_fields"],
        "withheld_fields": full["withheld_fields"],
        "obligations": {
            "retain_until": o["retain_until"],
            # The requester learns whether the provider is told, not which party that is.
            "notify_provider": o["notify_provider"] is not None,
            "review_break_glass": o["review_break_glass"],
        },
        "lawful_basis": full["matched"]["lawful_basis"] if full["matched"] else [],
        "policy_revision": full["policy_revision"],
    }
    body: dict[str, Any] = {
        "exchange_id": exchange_id,
        "decision": decision,
        "receipt": receipt_json(result.appended),
    }
    if result.attestations is not None:
        body["attestations"] = result.attestations
    elif result.match is not None:
        # A yes/no answer releases no values: say which claims were checked instead.
        decision["withheld_fields"] = []
        decision["verified_claims"] = full["verified_claims"]
        body["match"] = result.match
    else:
        body["record"] = result.record
    return body


def _response(result: ExchangeResult) -> Response:
    if result.document is None:
        return JSONResponse(
            answer_json(result), status_code=202 if result.held is not None else 200
        )
    receipt = json.dumps(receipt_json(result.appended), separators=(",", ":"))
    return StreamingResponse(
        result.document,
        media_type="application/octet-stream",
        headers={
            "X-Exchange-Id": result.exchange_id,
            "X-Document-SHA256": result.document_sha256 or "",
            "X-Receipt": base64.urlsafe_b64encode(receipt.encode()).decode(),
            "Cache-Control": "no-store",
        },
    )


class _Shapes:
    """The answers an ``Idempotency-Key`` keeps for a replay: exactly what was sent."""

    def __init__(self, request_id: str) -> None:
        self._request_id = request_id

    def answer(self, result: ExchangeResult) -> StoredAnswer | None:
        if result.document is not None:
            return None  # a stream is not kept for replay: a retry streams (and logs) again
        return StoredAnswer(202 if result.held is not None else 200, answer_json(result))

    def problem(self, error: BrokerError) -> StoredAnswer:
        return StoredAnswer(*problem_body(error, self._request_id))
