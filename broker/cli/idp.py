"""``broker idp ...``: the identity providers whose ID tokens name the person behind a request.

Every change is a logged admin action.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from broker.cli.citizen_idp import app as citizen_app
from broker.cli.citizen_idp import citizen_token
from broker.cli.common import (
    EXIT_USAGE,
    actor,
    console,
    fail,
    handled,
    print_json,
    read_jwks_file,
    require_demo,
    settings,
)
from broker.core.published_keys import PUBLISHED_KEY_THUMBPRINTS
from broker.db import migrate
from broker.db.engine import build_engine
from broker.identity.store import DEFAULT_ALGORITHMS, IdentityProviderStore
from broker.outbound import guard_for

app = typer.Typer(help="Parties' identity providers (OIDC ID tokens).", no_args_is_help=True)

Party = Annotated[str, typer.Option("--party", help="the requesting party's id")]
app.add_typer(citizen_app, name="citizen")
app.command("citizen-token")(citizen_token)


@contextlib.contextmanager
def _store() -> Iterator[IdentityProviderStore]:
    config = settings()
    engine = build_engine(config.database_url, pooled=False)
    try:
        migrate.upgrade(engine)
        yield IdentityProviderStore(
            engine, refused_thumbprints=PUBLISHED_KEY_THUMBPRINTS, guard=guard_for(config)
        )
    finally:
        engine.dispose()


def _role_map(pairs: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for pair in pairs:
        value, sep, role = pair.rpartition("=")
        if not sep or not value or not role:
            fail(f"--role-map {pair!r}: expected PROVIDER_VALUE=ROLE", EXIT_USAGE)
        found[value] = role
    return found


def _audiences(pairs: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for pair in pairs:
        client, sep, audience = pair.partition("=")
        if not sep or not client or not audience:
            fail(f"--audience {pair!r}: expected CLIENT_ID=AUDIENCE", EXIT_USAGE)
        found[client] = audience
    return found


@app.command("add")
def add(
    party: Party,
    issuer: Annotated[str, typer.Option(help="the provider's issuer (the tokens' iss)")],
    jwks_url: Annotated[
        str | None, typer.Option("--jwks-url", help="https URL of its keys")
    ] = None,
    jwks: Annotated[Path | None, typer.Option("--jwks", help="a JWKS file held inline")] = None,
    audience: Annotated[
        list[str] | None,
        typer.Option(help="CLIENT_ID=AUDIENCE: a system's client id at the provider (repeat)"),
    ] = None,
    user_claim: Annotated[str, typer.Option(help="the claim naming the user")] = "sub",
    role_claim: Annotated[str, typer.Option(help="claim or dotted path of the role(s)")] = "role",
    role_format: Annotated[
        str,
        typer.Option(
            help="claim: roles in --role-claim; cis2: the selected nhsid_nrbac_roles entry"
        ),
    ] = "claim",
    role_map: Annotated[
        list[str] | None,
        typer.Option(
            help="PROVIDER_VALUE=ROLE: a group or a national RBAC role code mapped to an "
            "agreement role (repeat)"
        ),
    ] = None,
    alg: Annotated[list[str] | None, typer.Option(help="an accepted algorithm (repeat)")] = None,
    require: Annotated[bool, typer.Option("--require", help="every request needs one")] = False,
) -> None:
    """Register an identity provider for a party (one provider may serve several parties: register
    it for each, with its own audiences and role map)."""
    key_set = None if jwks is None else read_jwks_file(jwks)
    with handled(), _store() as store:
        provider = store.add(
            party,
            issuer,
            actor=actor(),
            jwks_url=jwks_url,
            jwks=key_set,
            audiences=_audiences(audience or []),
            user_claim=user_claim,
            role_claim=role_claim,
            algorithms=alg or DEFAULT_ALGORITHMS,
            required=require,
            role_format=role_format,
            role_map=_role_map(role_map or []),
        )
    console.print(
        f"registered for [bold]{provider.party_id}[/bold] the identity provider {provider.issuer}"
        + (" (ID tokens required)" if provider.required else ""),
        highlight=False,
        soft_wrap=True,
    )


@app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Registered identity providers."""
    with handled(), _store() as store:
        rows = store.list()
    items = [
        {
            "party": p.party_id,
            "issuer": p.issuer,
            "jwks": p.jwks_url or "inline",
            "audiences": dict(p.audiences),
            "user_claim": p.user_claim,
            "role_claim": p.role_claim,
            "role_format": p.role_format,
            "role_map": dict(p.role_map),
            "algorithms": list(p.algorithms),
            "required": p.required,
        }
        for p in rows
    ]
    if as_json:
        print_json(items)
        return
    table = Table("party", "issuer", "keys", "roles", "mapped", "required")
    for p in rows:
        table.add_row(
            p.party_id,
            p.issuer,
            p.jwks_url or "inline",
            "cis2 selected role" if p.role_format == "cis2" else p.role_claim,
            str(len(p.role_map)) if p.role_map else "as given",
            "yes" if p.required else "no",
        )
    console.print(table)


@app.command("remove")
def remove(
    party: Party,
    issuer: Annotated[
        str | None, typer.Option(help="the provider's issuer (needed when it has several)")
    ] = None,
) -> None:
    """Remove a party's registration of an identity provider."""
    with handled(), _store() as store:
        store.remove(party, actor=actor(), issuer=issuer)
    console.print(f"removed {party}'s identity provider" + (f" {issuer}" if issuer else ""))


@app.command("demo-token")
def demo_token(
    user: Annotated[str, typer.Option(help="the member of staff's user id (the token's sub)")],
    role: Annotated[str, typer.Option(help="their agreement role, e.g. safeguarding-nurse")],
    client: Annotated[
        str, typer.Option("--client", help="the system the token is issued to (its aud)")
    ] = "r9z-ed-safeguarding",
    party: Annotated[
        str | None, typer.Option("--party", help="their party (default: the system's)")
    ] = None,
    name: Annotated[str | None, typer.Option(help="their display name")] = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="required (or BROKER_DEMO=1): demo keys only")
    ] = False,
) -> None:
    """Print an ID token of a demo member of staff from their party's demo identity provider
    (the CIS2-like sign-in for R9Z, Y99901, Y99902; a directory for the others), valid five
    minutes: for ``POST /oauth2/token`` (token exchange) or ``requested_by.id_token``. Only
    ``serve --demo`` trusts it: its key is a published demo key."""
    if not (demo or settings().demo):
        fail(
            "demo-token works only with --demo (or BROKER_DEMO=1): it signs with a published "
            "demo key, refused outside demo mode",
            EXIT_USAGE,
        )
    require_demo()
    from demo.identity import demo_id_token

    try:
        token = demo_id_token(user, role, client, party_id=party, name=name)
    except ValueError as e:
        fail(str(e), EXIT_USAGE)
    typer.echo(token)
