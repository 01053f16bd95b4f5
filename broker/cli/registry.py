"""``broker parties ...`` and ``broker clients ...``: the registry, every change logged."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from broker.auth.client_assertion import import_pem_key
from broker.auth.registry import PARTY_KINDS, Client
from broker.cli.common import (
    EXIT_USAGE,
    actor,
    console,
    fail,
    handled,
    print_json,
    read_jwks_file,
    registry,
    settings,
)
from broker.core.identifiers import RoleBinding
from broker.db.engine import build_engine

parties_app = typer.Typer(help="Parties: organisations that control data.", no_args_is_help=True)
clients_app = typer.Typer(help="Partner systems (clients) of parties.", no_args_is_help=True)


@parties_app.command("add")
def parties_add(
    party_id: Annotated[
        str, typer.Option("--id", help="e.g. calderbridge-city-council or an ODS code")
    ],
    name: Annotated[str, typer.Option(help="the organisation's name")],
    kind: Annotated[str, typer.Option(help=", ".join(PARTY_KINDS))],
    ods_code: Annotated[str | None, typer.Option(help="ODS code (NHS bodies)")] = None,
) -> None:
    """Register a party."""
    with handled(), registry(settings()) as reg:
        party = reg.add_party(party_id, name, kind, ods_code, actor=actor())
    console.print(f"added party [bold]{party.id}[/bold] ({party.kind})")


@parties_app.command("list")
def parties_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List parties."""
    with handled(), registry(settings()) as reg:
        rows = reg.list_parties()
    if as_json:
        print_json([vars(p) for p in rows])
        return
    table = Table("id", "name", "kind", "ODS code")
    for p in rows:
        table.add_row(p.id, p.name, p.kind, p.ods_code or "")
    console.print(table)


def public_jwk_from_pem(path: Path) -> dict[str, Any]:
    """A public JWK (kid = RFC 7638 thumbprint) from a PEM public or private key file."""
    key = import_pem_key(path.read_bytes())
    if key is None:
        fail(f"{path} is not an RSA, EC or Ed25519 PEM key", EXIT_USAGE)
    jwk = key.as_dict(private=False)
    jwk["kid"] = key.thumbprint()
    return dict(jwk)


def _load_jwks(jwks_file: Path | None, public_key: Path | None) -> dict[str, Any]:
    if (jwks_file is None) == (public_key is None):
        fail("give exactly one of --jwks FILE or --public-key PEM", EXIT_USAGE)
    if public_key is not None:
        return {"keys": [public_jwk_from_pem(public_key)]}
    assert jwks_file is not None
    return read_jwks_file(jwks_file)


@clients_app.command("add")
def clients_add(
    party: Annotated[str, typer.Option(help="the party that runs this system")],
    client_id: Annotated[str, typer.Option("--client-id")],
    jwks: Annotated[Path | None, typer.Option("--jwks", help="JWKS file of public keys")] = None,
    public_key: Annotated[Path | None, typer.Option("--public-key", help="a PEM key")] = None,
    scopes: Annotated[str, typer.Option(help="space or comma separated")] = "exchange",
    name: Annotated[str, typer.Option(help="a readable name")] = "",
) -> None:
    """Register a partner system with its public keys and granted scopes."""
    key_set = _load_jwks(jwks, public_key)
    with handled(), registry(settings()) as reg:
        client = reg.add_client(
            client_id, party, name, key_set, scopes.replace(",", " ").split(), actor=actor()
        )
    console.print(
        f"added client [bold]{client.id}[/bold] for {client.party_id}: "
        f"scopes {' '.join(client.scopes)}; keys {[k.get('kid') for k in client.keys]}"
    )


@clients_app.command("list")
def clients_list(
    party: Annotated[str | None, typer.Option(help="only this party's clients")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List partner systems, with the roles each may act for; flags systems bound to none."""
    with handled(), registry(settings()) as reg:
        rows = reg.list_clients(party)
    if as_json:
        print_json(
            [
                {
                    "id": c.id,
                    "party": c.party_id,
                    "name": c.name,
                    "scopes": list(c.scopes),
                    "status": c.status,
                    "kids": [k.get("kid") for k in c.keys],
                    "roles": [_binding_json(b) for b in c.roles],
                    "unbound": c.unbound,
                }
                for c in rows
            ]
        )
        return
    table = Table("client id", "party", "status", "scopes", "roles", "key ids")
    for c in rows:
        table.add_row(
            c.id,
            c.party_id,
            c.status,
            " ".join(c.scopes),
            _roles_cell(c),
            ", ".join(str(k.get("kid")) for k in c.keys),
        )
    console.print(table)
    unbound = [c.id for c in rows if c.unbound]
    if unbound:
        console.print(
            f"[yellow]unbound[/yellow] (no role: every request under an agreement is refused; "
            f"bind with `broker clients bind`): {', '.join(unbound)}",
            highlight=False,
        )


def _binding_json(b: RoleBinding) -> dict[str, str | None]:
    return {"role": b.role, "agreement_id": b.agreement_id, "flow_id": b.flow_id}


def _roles_cell(c: Client) -> str:
    if c.unbound:
        return "UNBOUND"
    return "\n".join(str(b) for b in c.roles) or "-"


RoleOption = Annotated[str, typer.Option("--role", help="the role, as agreements name it")]
AgreementOption = Annotated[
    str | None, typer.Option("--agreement", help="only under this agreement")
]
FlowOption = Annotated[
    str | None, typer.Option("--flow", help="only this flow of the agreement (needs --agreement)")
]


@clients_app.command("bind")
def clients_bind(
    client_id: str,
    role: RoleOption,
    agreement: AgreementOption = None,
    flow: FlowOption = None,
) -> None:
    """Let a system act for a role (under any agreement, or only --agreement, or its --flow)."""
    with handled(), registry(settings()) as reg:
        client = reg.bind(client_id, role, agreement, flow, actor=actor())
    bound = RoleBinding(role, agreement, flow)
    console.print(f"bound {client.id} to role {bound}", highlight=False)


@clients_app.command("unbind")
def clients_unbind(
    client_id: str,
    role: RoleOption,
    agreement: AgreementOption = None,
    flow: FlowOption = None,
) -> None:
    """Remove exactly one of a system's role bindings: its next request under it is refused."""
    with handled(), registry(settings()) as reg:
        client = reg.unbind(client_id, role, agreement, flow, actor=actor())
    console.print(
        f"unbound {client.id} from role {RoleBinding(role, agreement, flow)}"
        + ("" if client.roles else " (now bound to no role: it acts for none)"),
        highlight=False,
    )


@clients_app.command("roles")
def clients_roles(client_id: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The roles a system may act for."""
    with handled(), registry(settings()) as reg:
        client = reg.get_client(client_id)
    if as_json:
        print_json([_binding_json(b) for b in client.roles])
        return
    if not client.roles:
        console.print(f"{client.id} is bound to no role: it acts for none", highlight=False)
        return
    table = Table("role", "agreement", "flow")
    for b in client.roles:
        table.add_row(b.role, b.agreement_id or "any", b.flow_id or "any")
    console.print(table)


@clients_app.command("suspend")
def clients_suspend(client_id: str) -> None:
    """Suspend a client: its tokens stop working at once."""
    with handled(), registry(settings()) as reg:
        reg.set_status(client_id, "suspended", actor=actor())
    console.print(f"suspended {client_id}")


@clients_app.command("activate")
def clients_activate(client_id: str) -> None:
    """Re-activate a suspended client."""
    with handled(), registry(settings()) as reg:
        reg.set_status(client_id, "active", actor=actor())
    console.print(f"activated {client_id}")


@clients_app.command("add-key")
def clients_add_key(
    client_id: str,
    public_key: Annotated[Path, typer.Option("--public-key", help="a PEM key")],
) -> None:
    """Add a key to a client (key rotation: add the new key, switch, remove the old)."""
    jwk = public_jwk_from_pem(public_key)
    with handled(), registry(settings()) as reg:
        reg.add_key(client_id, jwk, actor=actor())
    console.print(f"added key {jwk['kid']} to {client_id}")


@clients_app.command("remove-key")
def clients_remove_key(
    client_id: str, kid: Annotated[str, typer.Option("--kid", help="the key id to remove")]
) -> None:
    """Remove one of a client's keys: assertions signed with it are refused from now on."""
    with handled(), registry(settings()) as reg:
        reg.remove_key(client_id, kid, actor=actor())
    console.print(f"removed key {kid} from {client_id}")


@clients_app.command("set-scopes")
def clients_set_scopes(
    client_id: str, scopes: Annotated[str, typer.Option(help="space or comma separated")]
) -> None:
    """Replace a client's granted scopes (takes effect on its next request)."""
    with handled(), registry(settings()) as reg:
        reg.set_scopes(client_id, scopes.replace(",", " ").split(), actor=actor())
    console.print(f"scopes of {client_id}: {scopes}")


@parties_app.command("import-keys")
def parties_import_keys(
    directory: Annotated[Path, typer.Argument(help="JWKS files named <party-id>.jwks.json")] = Path(
        "agreements/keys"
    ),
) -> None:
    """Import parties' agreement-signing public keys into the trust store (a logged admin action).

    Demo mode only (the demo's bootstrap); never for a party that already has a key. Elsewhere a
    party's own officers register its key. Dropping a file is not enough: only imported keys count.
    """
    from broker.agreements.errors import AgreementError
    from broker.agreements.store import import_party_keys

    config = settings()
    if not config.demo:
        # The trust root is the party's own key: its officers register it, not the operator.
        fail(
            "outside demo mode a party's signing key is registered by the party itself: two of "
            "its officers approve its thumbprint (POST /v1/agreements/keys/approvals), and a "
            "new key is a rotation signed with the current one (broker agreements rotate-key)",
            EXIT_USAGE,
        )
    with handled(), registry(config) as reg:
        known = {p.id for p in reg.list_parties()}
        engine = build_engine(config.database_url, pooled=False)
        try:
            imported = import_party_keys(engine, directory, actor(), known_parties=known, demo=True)
        except AgreementError as e:
            fail(str(e), EXIT_USAGE)
        finally:
            engine.dispose()
    for key in imported:
        console.print(f"trusted {key}", highlight=False)
    if not imported:
        console.print("nothing new to import")
