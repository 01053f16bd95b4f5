"""Dependencies shared by routes, as ``Annotated`` aliases.

``CurrentClient`` verifies the bearer token and then checks, on every request, that the client
still exists and is active and still holds the token's scopes: suspension or a withdrawn scope
takes effect at once, not when tokens expire. ``require_scope`` adds the scope check.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from starlette.concurrency import run_in_threadpool

from broker.auth.registry import Client
from broker.auth.tokens import TokenCitizen, TokenClaims, TokenUser
from broker.container import Services
from broker.core.errors import Forbidden, InvalidToken

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="BearerToken",
    description=(
        "An access token from `POST /oauth2/token` (OAuth 2.0 client credentials grant, "
        "client authentication with `private_key_jwt` per RFC 7523). Scopes: exchange, "
        "governance, oversight, consent, subject-access, bundle, admin."
    ),
)


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of a protected route."""

    client: Client
    scopes: frozenset[str]
    citizen: TokenCitizen | None = None
    """The citizen a citizen token names (broker/identity/citizen_exchange.py), else None."""
    user: TokenUser | None = None
    """The verified member of staff a user-restricted token names (token exchange), else None."""

    @property
    def client_id(self) -> str:
        return self.client.id

    @property
    def party_id(self) -> str:
        return self.client.party_id


def verify_bearer(services: Services, token: str | None) -> TokenClaims:
    """The claims of bearer ``token`` (the header's value after "Bearer "): signature, issuer,
    audience, expiry. No I/O. Raises InvalidToken (401), counted by reason."""
    metrics = services.metrics
    if token is None:
        metrics.auth_failures.labels("missing_token").inc()
        raise InvalidToken("a bearer access token is required")
    try:
        return services.tokens.verify(token)
    except InvalidToken:
        metrics.auth_failures.labels("invalid_token").inc()
        raise


def check_client(services: Services, claims: TokenClaims) -> Principal:
    """The token's client as the registry has it now: still registered to the same party, still
    active. Blocking (one read). Raises InvalidToken (401), counted by reason."""
    metrics = services.metrics
    client = services.registry.find_client(claims.client_id)
    if client is None or client.party_id != claims.party_id:
        metrics.auth_failures.labels("unknown_client").inc()
        raise InvalidToken("the client of this token is no longer registered")
    if not client.active:
        metrics.auth_failures.labels("suspended").inc()
        raise InvalidToken("the client is suspended")
    return Principal(client, claims.scopes & frozenset(client.scopes), claims.citizen, claims.user)


async def authenticate(request: Request, services: Services, token: str | None) -> Principal:
    """The caller behind bearer ``token``, checked against the registry now."""
    claims = verify_bearer(services, token)
    principal = await run_in_threadpool(check_client, services, claims)
    request.scope.setdefault("state", {})["client_id"] = principal.client_id
    return principal


def _bearer(request: Request) -> str | None:
    """The bearer token as ``HTTPBearer`` reads it, or None."""
    scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
    if scheme.lower() != "bearer" or not token:
        return None
    return token


async def current_principal(
    request: Request,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    token = None
    if credentials is not None and credentials.scheme.lower() == "bearer":
        token = credentials.credentials
    return await authenticate(request, services, token)


def _check_scope(principal: Principal, services: Services, any_of: tuple[str, ...]) -> Principal:
    if not principal.scopes & set(any_of):
        services.metrics.auth_failures.labels("insufficient_scope").inc()
        raise Forbidden(f"this needs the scope {' or '.join(any_of)}")
    return principal


@dataclass(frozen=True)
class PendingPrincipal:
    """A verified access token whose client is still to be checked against the registry: for
    the hot route, which does that read in the same worker-thread hand-off as its own reads.
    Until :meth:`check` passes, only ``claims.client_id`` may be used (rate limiting)."""

    claims: TokenClaims
    services: Services
    any_of: tuple[str, ...]

    def check(self) -> Principal:
        """Blocking. Raises InvalidToken (401) or Forbidden (403), exactly as ``require_scope``."""
        return _check_scope(check_client(self.services, self.claims), self.services, self.any_of)


def pending_scope(*any_of: str) -> Callable[..., Coroutine[Any, Any, PendingPrincipal]]:
    """A flat dependency (FastAPI resolves a tree of dependencies on every request) that verifies
    the token and leaves the registry check to the route. Declare
    ``openapi_extra=BEARER_SECURITY`` on the route for the docs."""

    async def dependency(request: Request) -> PendingPrincipal:  # async: no thread hand-off
        services = get_services(request)
        claims = verify_bearer(services, _bearer(request))
        request.scope.setdefault("state", {})["client_id"] = claims.client_id
        return PendingPrincipal(claims, services, any_of)

    return dependency


BEARER_SECURITY: dict[str, Any] = {"security": [{"BearerToken": []}]}


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_scope(
    *any_of: str,
) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency that passes a Principal holding at least one of ``any_of``."""

    async def dependency(principal: CurrentPrincipal, services: ServicesDep) -> Principal:
        return _check_scope(principal, services, any_of)

    return dependency
