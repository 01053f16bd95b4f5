"""``POST /v1/exchanges``: a partner system's sharing request (docs/exchanges.md)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
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
from broker.core.errors import BrokerError, NotFound, Refused
from broker.exchange.idempotency import StoredAnswer, body_digest
from broker.exchange.request import ExchangeRequest
from broker.exchange.service import Caller

router = APIRouter(tags=["exchanges"])
Exchanger = Annotated[Principal, Depends(require_scope("exchange"))]
#: The same checks as ``Exchanger``; the registry half runs in the exchange's first hand-off.
PendingExchanger = Annotated[PendingPrincipal, Depends(pending_scope("exchange"))]

#: Answers that were logged: a retry with the same Idempotency-Key gets them again, unlogged.
_REPEATABLE = (Refused, NotFound)

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
    services.rate_limiter.take(client_id)
    key = idempotency_key

    def check_caller() -> Caller:
        principal = pending.check()
        return Caller(principal.client_id, principal.party_id, principal.client.name)

    # Without a key the registry check runs in the exchange's first worker-thread hand-off
    # (before anything else in it); with one it must pass before a stored answer is replayed.
    caller: Caller | Callable[[], Caller] = check_caller
    if key is not None:
        digest = body_digest(await request.body())
        now_ms = int(services.clock() * 1000)

        def check_then_begin(key: str) -> tuple[Caller, StoredAnswer | None]:
            checked = check_caller()
            return checked, services.idempotency.begin(client_id, key, digest, now_ms)

        caller, stored = await run_in_threadpool(check_then_begin, key)
        if stored is not None:
            media = PROBLEM_JSON if stored.status_code >= 400 else "application/json"
            return JSONResponse(
                stored.body,
                status_code=stored.status_code,
                media_type=media,
                headers={"Idempotent-Replayed": "true"},
            )
    try:
        result = await services.exchanges.handle(caller, body)
    except BrokerError as e:
        if key is not None:
            if isinstance(e, _REPEATABLE):
                status, problem = problem_body(e, str(request.scope["state"]["request_id"]))
                await run_in_threadpool(
                    services.idempotency.finish,
                    client_id,
                    key,
                    StoredAnswer(status, problem),
                )
            else:
                await run_in_threadpool(services.idempotency.abandon, client_id, key)
        raise
    if result.document is not None:
        if key is not None:  # a stream is not kept for replay: a retry streams (and logs) again
            await run_in_threadpool(services.idempotency.abandon, client_id, key)
        receipt = json.dumps(result.appended.to_receipt(), separators=(",", ":"))
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
    answer = result.body()
    status = 202 if result.held is not None else 200
    if key is not None:
        await run_in_threadpool(
            services.idempotency.finish, client_id, key, StoredAnswer(status, answer)
        )
    return JSONResponse(answer, status_code=status)


@router.get(
    "/v1/exchanges/{exchange_id}/preview",
    summary="The status of an exchange held for the citizen's preview (the requester polls this)",
)
async def preview_status(
    exchange_id: str, principal: Exchanger, services: ServicesDep
) -> dict[str, Any]:
    held = await run_in_threadpool(services.subjects.previews.status, exchange_id)
    if held.requester_party != principal.party_id:
        raise NotFound(f"exchange {exchange_id} is not held for preview")
    return held.to_json()
