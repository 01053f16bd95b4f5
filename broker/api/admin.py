"""Registry administration over HTTP (scope ``admin``). Every change is a logged admin action."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from broker.api.deps import Principal, ServicesDep, require_scope
from broker.auth.registry import ID_PATTERN, Client, Party
from broker.core.identifiers import RoleBinding

router = APIRouter(prefix="/v1/admin", tags=["administration"])
Admin = Annotated[Principal, Depends(require_scope("admin"))]

# Ids from outside are checked here, before any store or table model sees them: a malformed id
# is a 422 naming the field, never a 404 or a 500.
_ID_RULES: dict[str, Any] = {"min_length": 2, "max_length": 100, "pattern": ID_PATTERN}
PartyIdQuery = Annotated[str | None, Query(**_ID_RULES, description="only this party's clients")]
ClientIdPath = Annotated[str, Path(**_ID_RULES)]
_BINDING_RULES = _ID_RULES  # roles, agreement and flow ids of a role binding


class PartyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(**_ID_RULES)
    name: str = Field(min_length=1, max_length=300)
    kind: str = Field(pattern="^(council|nhs|police|education|housing|other)$")
    ods_code: str | None = Field(default=None, max_length=10)


class PartyOut(BaseModel):
    id: str
    name: str
    kind: str
    ods_code: str | None


class RoleBindingIn(BaseModel):
    """A role the system may act for: under any agreement, or only ``agreement_id`` (and only
    its ``flow_id``)."""

    model_config = ConfigDict(extra="forbid")
    role: str = Field(**_BINDING_RULES)
    agreement_id: str | None = Field(default=None, **_BINDING_RULES)
    flow_id: str | None = Field(default=None, **_BINDING_RULES)


class RoleBindingOut(BaseModel):
    role: str
    agreement_id: str | None
    flow_id: str | None


class ClientOut(BaseModel):
    id: str
    party_id: str
    name: str
    scopes: list[str]
    status: str
    key_ids: list[str]
    roles: list[RoleBindingOut]
    unbound: bool = Field(description="makes exchanges but is bound to no role: acts for none")


def _binding_out(b: RoleBinding) -> RoleBindingOut:
    return RoleBindingOut(role=b.role, agreement_id=b.agreement_id, flow_id=b.flow_id)


def _client_out(c: Client) -> ClientOut:
    return ClientOut(
        id=c.id,
        party_id=c.party_id,
        name=c.name,
        scopes=list(c.scopes),
        status=c.status,
        key_ids=[str(k.get("kid", "")) for k in c.keys],
        roles=[_binding_out(b) for b in c.roles],
        unbound=c.unbound,
    )


def _party_out(p: Party) -> PartyOut:
    return PartyOut(id=p.id, name=p.name, kind=p.kind, ods_code=p.ods_code)


@router.get("/parties", summary="List parties")
async def list_parties(_: Admin, services: ServicesDep) -> list[PartyOut]:
    return [_party_out(p) for p in await run_in_threadpool(services.registry.list_parties)]


@router.post("/parties", status_code=201, summary="Register a party")
async def add_party(body: PartyIn, principal: Admin, services: ServicesDep) -> PartyOut:
    party = await run_in_threadpool(
        lambda: services.registry.add_party(
            body.id, body.name, body.kind, body.ods_code, actor=f"client:{principal.client_id}"
        )
    )
    return _party_out(party)


@router.get("/clients", summary="List partner systems")
async def list_clients(
    _: Admin, services: ServicesDep, party_id: PartyIdQuery = None
) -> list[ClientOut]:
    clients = await run_in_threadpool(services.registry.list_clients, party_id)
    return [_client_out(c) for c in clients]


@router.post("/clients/{client_id}/suspend", summary="Suspend a client at once")
async def suspend_client(
    client_id: ClientIdPath, principal: Admin, services: ServicesDep
) -> ClientOut:
    def run() -> Any:
        return services.registry.set_status(
            client_id, "suspended", actor=f"client:{principal.client_id}"
        )

    return _client_out(await run_in_threadpool(run))


@router.get("/clients/{client_id}/roles", summary="The roles a partner system may act for")
async def client_roles(
    client_id: ClientIdPath, _: Admin, services: ServicesDep
) -> list[RoleBindingOut]:
    client = await run_in_threadpool(services.registry.get_client, client_id)
    return [_binding_out(b) for b in client.roles]


@router.post(
    "/clients/{client_id}/roles",
    status_code=201,
    summary="Bind a partner system to a role (optionally narrowed to an agreement or flow)",
)
async def bind_role(
    client_id: ClientIdPath, body: RoleBindingIn, principal: Admin, services: ServicesDep
) -> ClientOut:
    def run() -> Client:
        return services.registry.bind(
            client_id,
            body.role,
            body.agreement_id,
            body.flow_id,
            actor=f"client:{principal.client_id}",
        )

    return _client_out(await run_in_threadpool(run))


@router.delete(
    "/clients/{client_id}/roles",
    summary="Remove one of a partner system's role bindings (exactly as bound)",
)
async def unbind_role(
    client_id: ClientIdPath,
    principal: Admin,
    services: ServicesDep,
    role: Annotated[str, Query(**_BINDING_RULES)],
    agreement_id: Annotated[str | None, Query(**_BINDING_RULES)] = None,
    flow_id: Annotated[str | None, Query(**_BINDING_RULES)] = None,
) -> ClientOut:
    def run() -> Client:
        return services.registry.unbind(
            client_id, role, agreement_id, flow_id, actor=f"client:{principal.client_id}"
        )

    return _client_out(await run_in_threadpool(run))
