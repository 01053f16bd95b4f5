"""``GET /v1/policy/bundle``: the signed OPA bundle for sidecars (scope ``bundle``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header
from fastapi.responses import Response

from broker.api.deps import Principal, ServicesDep, require_scope
from broker.core.errors import Unavailable
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
