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
    settings,
)
from broker.core.published_keys import PUBLISHED_KEY_THUMBPRINTS
from broker.db import migrate
from broker.db.engine import build_engine
from broker.identity.store import DEFAULT_ALGORITHMS, IdentityProviderStore
from demo.identity import demo_id_token

app = typer.Typer(help="Parties' identity providers (OIDC ID tokens).", no_args_is_help=True)

Party = Annotated[str, typer.Option("--party", help="the requesting party's id")]
app.add_typer(citizen_app, name="citizen")
app.command("citizen-token")(citizen_token)


@contextlib.contextmanager
def _store() -> Iterator[IdentityProviderStore]:
    engine = build_engine(settings().database_url, pooled=False)
    try:
        migrate.upgrade(engine)
        yield IdentityProviderStore(engine, refused_thumbprints=PUBLISHED_KEY_THUMBPRINTS)
    finally:
        engine.dispose()


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
    alg: Annotated[list[str] | None, typer.Option(help="an accepted algorithm (repeat)")] = None,
    require: Annotated[bool, typer.Option("--require", help="every request needs one")] = False,
) -> None:
    """Register a party's identity provider."""
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
        )
    console.print(
        f"registered the identity provider of [bold]{provider.party_id}[/bold]: {provider.issuer}"
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
            "algorithms": list(p.algorithms),
            "required": p.required,
        }
        for p in rows
    ]
    if as_json:
        print_json(items)
        return
    table = Table("party", "issuer", "keys", "role claim", "required")
    for item in items:
        table.add_row(
            str(item["party"]),
            str(item["issuer"]),
            str(item["jwks"]),
            str(item["role_claim"]),
            "yes" if item["required"] else "no",
        )
    console.print(table)


@app.command("remove")
def remove(party: Party) -> None:
    """Remove a party's identity provider."""
    with handled(), _store() as store:
        store.remove(party, actor=actor())
    console.print(f"removed the identity provider of {party}")


@app.command("demo-token")
def demo_token(
    user: Annotated[str, typer.Option(help="the member of staff's user id")],
    role: Annotated[str, typer.Option(help="their role")],
    client_id: Annotated[str, typer.Option("--client-id")] = "r9z-ed-safeguarding",
) -> None:
    """Print an ID token from the demo hospital's smartcard sign-in (``serve --demo`` only
    trusts it; valid five minutes), for ``requested_by.id_token``."""
    typer.echo(demo_id_token(user, role, client_id))
