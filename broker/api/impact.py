"""``POST /v1/agreements/impact`` and ``GET /v1/agreements/impact/{job}``: what a draft agreement
would change, replayed over the logged requests of a capped period (a logged background job).

The body is the draft's YAML (unsigned; validated, every problem named); ``days`` the period
(1-90). A governance officer runs drafts its party is in and sees other parties' requests as
counts only; oversight sees every party in detail. The report never names an exchange, a user, a
case reference or a pseudonym.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from broker.agreements.draft_text import MAX_DRAFT_BYTES, parse_draft
from broker.api.deps import Principal, ServicesDep, require_scope
from broker.container import Services
from broker.core.errors import InvalidInput, Unavailable
from broker.exchange.impact import MAX_DAYS
from broker.exchange.impact_jobs import ImpactJobs, Viewer

router = APIRouter(prefix="/v1/agreements/impact", tags=["agreements"])
Officer = Annotated[Principal, Depends(require_scope("governance", "oversight"))]
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/plain")


def impact_jobs(services: Services) -> ImpactJobs:
    runtime = services.policy_runtime
    return ImpactJobs(
        services.engine,
        services.audit,
        runtime.policy_dir,
        lambda: runtime.last,
        lambda: int(services.clock() * 1000),
    )


def viewer_of(principal: Principal) -> Viewer:
    return Viewer(principal.party_id, principal.client_id, "oversight" in principal.scopes)


@router.post(
    "",
    status_code=202,
    summary="Start an impact run of a draft agreement (YAML body) over the last `days` days",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/yaml": {"schema": {"type": "string"}}},
        }
    },
)
async def start_impact(
    request: Request,
    principal: Officer,
    services: ServicesDep,
    background: BackgroundTasks,
    days: Annotated[int, Query(ge=1, le=MAX_DAYS, description="the period replayed")] = 30,
) -> dict[str, Any]:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in YAML_TYPES:
        raise InvalidInput("the body must be the draft agreement as YAML (application/yaml)")
    raw = await request.body()
    if len(raw) > MAX_DRAFT_BYTES:
        raise InvalidInput(f"the draft is larger than {MAX_DRAFT_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidInput("the draft is not UTF-8 text") from e
    last = services.policy_runtime.last
    if last is None:
        raise Unavailable("agreements are not loaded")
    draft = parse_draft(
        text, register=last.register, known_parties=services.policy_runtime.known_parties()
    )
    jobs = impact_jobs(services)
    viewer = viewer_of(principal)
    job = await run_in_threadpool(jobs.start, viewer, draft, days)
    background.add_task(jobs.run, job, viewer, draft, days)
    return {"job": job, "status": "running", "location": f"/v1/agreements/impact/{job}"}


@router.get("/{job}", summary="An impact run: its status and, once done, the report")
async def get_impact(job: str, principal: Officer, services: ServicesDep) -> dict[str, Any]:
    if len(job) > 36:
        raise InvalidInput("not an impact run id")
    return await run_in_threadpool(impact_jobs(services).get, job, viewer_of(principal))
