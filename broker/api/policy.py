"""``GET /v1/policy/bundle``: the signed OPA bundle for sidecars (scope ``bundle``)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from broker.agreements.draft_text import parse_draft
from broker.agreements.model import Agreement
from broker.api.deps import Principal, ServicesDep, require_scope
from broker.container import Services
from broker.core.errors import Forbidden, Unavailable
from broker.exchange.impact_jobs import Viewer, check_viewer, current_version, draft_engine
from broker.exchange.simulation import Decider, SimulationRequest, simulate
from broker.policy.serving import bundle_reply

router = APIRouter(tags=["policy"])


@router.get(
    "/v1/policy/bundle",
    summary="The signed OPA bundle (ETag = revision; If-None-Match gives 304)",
    response_class=Response,
    responses={
        200: {"content": {"application/gzip": {}}, "description": "the bundle (tar.gz)"},
        304: {"description": "the caller holds this revision already"},
    },
)
async def bundle(
    services: ServicesDep,
    _: Annotated[Principal, Depends(require_scope("bundle", "oversight"))],
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    current = services.policy.current_bundle
    if current is None:
        raise Unavailable("no policy bundle is loaded")
    revision, blob = current
    reply = bundle_reply(blob, revision, if_none_match)
    return Response(reply.body, status_code=reply.status, headers=reply.headers)


@router.post(
    "/v1/policy/simulate",
    summary="Dry run: the live policy's (or a draft's) decision for a hypothetical request",
)
async def simulate_request(
    body: SimulationRequest,
    services: ServicesDep,
    officer: Annotated[Principal, Depends(require_scope("governance", "oversight"))],
) -> dict[str, Any]:
    draft = None
    policy: Decider = services.policy
    if body.draft is not None:
        draft, policy = await run_in_threadpool(_draft_policy, services, officer, body)
    elif "oversight" not in officer.scopes and body.as_party != officer.party_id:
        last = services.policy_runtime.last
        agreements = (
            []
            if last is None
            else [v.agreement for v in last.agreements if v.agreement is not None]
        )
        if not any(
            a.id == body.agreement_id and any(p.id == officer.party_id for p in a.parties)
            for a in agreements
        ):
            raise Forbidden(
                "governance officers simulate their own party's requests, or requests under "
                "agreements their party is in"
            )
    last = services.policy_runtime.last
    entry = None if last is None else last.register.entries.get(body.dataset)
    catalogue = None if entry is None else frozenset(entry.field_names())
    # A registered system of the imagined party: its role bindings apply, as they would.
    system = await run_in_threadpool(services.registry.find_client, body.as_client)
    bound = system.roles if system is not None and system.party_id == body.as_party else None
    return await simulate(
        policy,
        services.audit,
        officer.client_id,
        officer.party_id,
        body,
        lambda: dt.datetime.fromtimestamp(services.clock(), dt.UTC),
        bound,
        catalogue,
        draft,
    )


def _draft_policy(
    services: Services, officer: Principal, body: SimulationRequest
) -> tuple[Agreement, Decider]:
    """The draft in the body and the policy compiled with it in place of its version in force
    (in memory, never served). A governance officer simulates drafts its party is in."""
    last = services.policy_runtime.last
    if last is None:
        raise Unavailable("agreements are not loaded")
    draft = parse_draft(
        body.draft or "",
        register=last.register,
        known_parties=services.policy_runtime.known_parties(),
    )
    viewer = Viewer(officer.party_id, officer.client_id, "oversight" in officer.scopes)
    check_viewer(viewer, draft, current_version(last, draft.id))
    at = body.at or dt.datetime.fromtimestamp(services.clock(), dt.UTC)
    day = (at if at.tzinfo else at.replace(tzinfo=dt.UTC)).date()
    engine = draft_engine(last, draft, services.policy_runtime.policy_dir, day, day)
    return draft, engine
