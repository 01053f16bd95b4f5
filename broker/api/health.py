"""Operator endpoints: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from broker.api.deps import ServicesDep

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: database reachable and migrated, policy loaded and not behind the "
    "agreements",
    responses={503: {"description": "not ready, with the failing checks"}},
)
async def readyz(services: ServicesDep) -> JSONResponse:
    """Ready while every check passes. Zero agreements in force is still ready (a fresh install
    must be reachable to draft its first agreement): ``agreements_in_force`` and a note say so."""

    def run_checks() -> tuple[dict[str, Any], dict[str, Any], int]:
        checks = {name: check() for name, check in services.readiness.items()}
        notes = {name: note() for name, note in services.notes.items()}
        in_force = services.policy_runtime.agreements_in_force()
        return checks, {name: text for name, text in notes.items() if text}, in_force

    results, notes, in_force = await run_in_threadpool(run_checks)
    ready = all(reason is None for reason in results.values())
    body: dict[str, Any] = {
        "status": "ready" if ready else "not ready",
        "checks": {name: reason or "ok" for name, reason in results.items()},
        "policy_revision": services.policy.status().revision,
        "agreements_in_force": in_force,
    }
    if notes:
        body["notes"] = notes
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics (of every server process when there are several)",
    response_class=Response,
)
async def metrics(services: ServicesDep) -> Response:
    return Response(services.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
