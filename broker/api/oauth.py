"""``POST /oauth2/token`` (client credentials, or token exchange of a user's ID token, both with
``private_key_jwt``), the broker's JWKS and its RFC 8414 authorization server metadata."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from broker.api.deps import ServicesDep
from broker.api.problems import oauth_response
from broker.auth.assertion import TOKEN_EXCHANGE_GRANT, authenticate_client
from broker.auth.metadata import JWKS_PATH, METADATA_PATH, authorization_server_metadata
from broker.auth.scopes import parse_scopes
from broker.core.errors import OAuthError
from broker.identity.citizen_exchange import exchange_citizen_token
from broker.identity.token_exchange import ACCESS_TOKEN_TYPE, exchange_id_token

router = APIRouter(tags=["authentication"])
FORM_MAX_BYTES = 16384


async def _read_form(request: Request) -> dict[str, str]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise OAuthError(
            "invalid_request",
            "the body must be application/x-www-form-urlencoded",
            reason="malformed",
        )
    body = await request.body()
    if len(body) > FORM_MAX_BYTES:
        raise OAuthError("invalid_request", "the form is too large", reason="too_large")
    try:
        pairs = parse_qsl(
            body.decode("ascii"),
            keep_blank_values=True,
            strict_parsing=bool(body),
            max_num_fields=20,
        )
    except (UnicodeDecodeError, ValueError) as e:
        raise OAuthError("invalid_request", "the form cannot be parsed", reason="malformed") from e
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise OAuthError(
                "invalid_request", f"parameter {name!r} appears twice", reason="malformed"
            )
        form[name] = value
    return form


@router.post(
    "/oauth2/token",
    summary="Get an access token (client credentials or RFC 8693 token exchange of an ID token, "
    "with private_key_jwt, RFC 7523)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "required": ["grant_type", "client_assertion_type", "client_assertion"],
                        "properties": {
                            "grant_type": {
                                "type": "string",
                                "enum": ["client_credentials", TOKEN_EXCHANGE_GRANT],
                            },
                            "client_assertion_type": {
                                "type": "string",
                                "enum": ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"],
                            },
                            "client_assertion": {
                                "type": "string",
                                "description": "JWT: iss = sub = client id, aud = token URL, "
                                "unique jti, exp at most 5 minutes ahead",
                            },
                            "scope": {"type": "string", "description": "optional subset"},
                            "subject_token": {
                                "type": "string",
                                "description": "token exchange: the user's ID token from the "
                                "party's identity provider, issued to this system (or, for a "
                                "citizen-facing system, the citizen's ID token from a citizen "
                                "identity provider registered for its party)",
                            },
                            "subject_token_type": {
                                "type": "string",
                                "enum": ["urn:ietf:params:oauth:token-type:id_token"],
                            },
                        },
                    }
                }
            },
        }
    },
    responses={400: {"description": "RFC 6749 error"}, 401: {"description": "invalid_client"}},
)
async def token(request: Request, services: ServicesDep) -> JSONResponse:
    counter = services.metrics.token_requests
    try:
        form = await _read_form(request)
        client = await run_in_threadpool(
            authenticate_client,
            form,
            services.registry,
            services.replay,
            services.assertion_rules,
            services.clock,
            request.headers.get("authorization"),
        )
        requested = form.get("scope")
        if requested:
            try:
                scopes = parse_scopes(requested)
            except ValueError as e:
                raise OAuthError("invalid_scope", str(e), reason="invalid_scope") from e
            if not set(scopes) <= set(client.scopes):
                raise OAuthError(
                    "invalid_scope", "a requested scope is not granted", reason="invalid_scope"
                )
        else:
            scopes = list(client.scopes)
        issued_token_type = None
        citizen_provider = (
            await run_in_threadpool(
                services.citizens.provider_for, client, form.get("subject_token")
            )
            if form.get("grant_type") == TOKEN_EXCHANGE_GRANT
            else None
        )
        if citizen_provider is not None:
            issued = await run_in_threadpool(
                exchange_citizen_token,
                form,
                client,
                scopes,
                citizen_provider,
                citizens=services.citizens,
                tokens=services.tokens,
                replay=services.replay,
                now=services.clock(),
            )
            issued_token_type = ACCESS_TOKEN_TYPE
        elif form.get("grant_type") == TOKEN_EXCHANGE_GRANT:
            exchanged = await run_in_threadpool(
                exchange_id_token,
                form,
                client,
                scopes,
                identity=services.identity,
                tokens=services.tokens,
                replay=services.replay,
                now=services.clock(),
                suspended=services.suspensions.suspended,
            )
            issued, issued_token_type = exchanged.issued, ACCESS_TOKEN_TYPE
        else:
            issued = services.tokens.issue(client, scopes)
    except OAuthError as e:
        counter.labels("refused", e.reason).inc()
        return oauth_response(e)
    counter.labels("issued", "ok").inc()
    request.scope.setdefault("state", {})["client_id"] = client.id
    answer: dict[str, Any] = {
        "access_token": issued.access_token,
        "token_type": issued.token_type,
        "expires_in": issued.expires_in,
        "scope": issued.scope,
    }
    if issued_token_type is not None:
        answer["issued_token_type"] = issued_token_type
    return JSONResponse(
        answer,
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


@router.get(JWKS_PATH, summary="The broker's token verification keys")
async def jwks(services: ServicesDep) -> dict[str, Any]:
    return services.keyring.jwks()


@router.get(METADATA_PATH, summary="Authorization server metadata (RFC 8414)")
async def metadata(services: ServicesDep) -> dict[str, Any]:
    return authorization_server_metadata(services.tokens.issuer, services.assertion_rules.audience)
