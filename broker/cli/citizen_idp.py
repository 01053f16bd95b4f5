"""``broker idp citizen ...``: citizen identity providers (NHS login, GOV.UK One Login) of a
party's citizen-facing systems, and ``broker idp citizen-token`` for the demo.

Every change is a logged admin action (``citizen-idp.add``, ``citizen-idp.remove``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

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
from broker.identity.citizen_store import CitizenProviderStore
from broker.identity.citizens import CitizenRules
from broker.identity.store import DEFAULT_ALGORITHMS
from broker.outbound import guard_for

app = typer.Typer(
    help="Citizen identity providers of citizen-facing systems (NHS login, GOV.UK One Login).",
    no_args_is_help=True,
)

Party = Annotated[str, typer.Option("--party", help="the party of the citizen-facing system")]
Issuer = Annotated[str, typer.Option(help="the provider's issuer (the tokens' iss)")]


@contextlib.contextmanager
def _store() -> Iterator[CitizenProviderStore]:
    config = settings()
    engine = build_engine(config.database_url, pooled=False)
    try:
        migrate.upgrade(engine)
        yield CitizenProviderStore(
            engine, refused_thumbprints=PUBLISHED_KEY_THUMBPRINTS, guard=guard_for(config)
        )
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
    issuer: Issuer,
    name: Annotated[str, typer.Option(help="what the citizen sees, e.g. 'NHS login'")],
    jwks_url: Annotated[
        str | None, typer.Option("--jwks-url", help="https URL of its keys")
    ] = None,
    jwks: Annotated[Path | None, typer.Option("--jwks", help="a JWKS file held inline")] = None,
    audience: Annotated[
        list[str] | None,
        typer.Option(help="CLIENT_ID=AUDIENCE: a system's client id at the provider (repeat)"),
    ] = None,
    identifier_claim: Annotated[
        str, typer.Option(help="the claim holding the verified identifier")
    ] = "nhs_number",
    identifier_type: Annotated[str, typer.Option(help="nhs_number or person_id")] = "nhs_number",
    assurance_claim: Annotated[
        str, typer.Option(help="the claim stating the identity's assurance")
    ] = "identity_proofing_level",
    assurance: Annotated[
        list[str] | None, typer.Option(help="an accepted assurance value (repeat)")
    ] = None,
    alg: Annotated[list[str] | None, typer.Option(help="an accepted algorithm (repeat)")] = None,
) -> None:
    """Register a citizen identity provider for a party (NHS login: the defaults, P9)."""
    key_set = None if jwks is None else read_jwks_file(jwks)
    rules = CitizenRules(
        identifier_claim=identifier_claim,
        identifier_type=identifier_type,
        assurance_claim=assurance_claim,
        assurance_values=frozenset(assurance or ["P9"]),
    )
    with handled(), _store() as store:
        provider = store.add(
            party,
            issuer,
            actor=actor(),
            name=name,
            rules=rules,
            jwks_url=jwks_url,
            jwks=key_set,
            audiences=_audiences(audience or []),
            algorithms=alg or DEFAULT_ALGORITHMS,
        )
    console.print(
        f"registered the citizen identity provider {provider.name!r} of "
        f"[bold]{provider.party_id}[/bold]: {provider.issuer}",
        highlight=False,
        soft_wrap=True,
    )


@app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Registered citizen identity providers."""
    with handled(), _store() as store:
        rows = store.list()
    items = [
        {
            "party": p.party_id,
            "issuer": p.issuer,
            "name": p.name,
            "jwks": p.jwks_url or "inline",
            "audiences": dict(p.audiences),
            "algorithms": list(p.algorithms),
            "identifier_claim": p.rules.identifier_claim,
            "identifier_type": p.rules.identifier_type,
            "assurance_claim": p.rules.assurance_claim,
            "assurance_values": sorted(p.rules.assurance_values),
        }
        for p in rows
    ]
    if as_json:
        print_json(items)
        return
    table = Table("party", "name", "issuer", "identifier", "assurance")
    for item in items:
        table.add_row(
            str(item["party"]),
            str(item["name"]),
            str(item["issuer"]),
            f"{item['identifier_claim']} ({item['identifier_type']})",
            f"{item['assurance_claim']} in {', '.join(item['assurance_values'])}",
        )
    console.print(table)


@app.command("remove")
def remove(party: Party, issuer: Issuer) -> None:
    """Remove a party's citizen identity provider."""
    with handled(), _store() as store:
        store.remove(party, issuer, actor=actor())
    console.print(f"removed the citizen identity provider {issuer} of {party}", highlight=False)


def citizen_token(
    nhs_number: Annotated[str, typer.Option("--nhs-number", help="the citizen's NHS number")],
    client: Annotated[
        str, typer.Option("--client", help="the citizen-facing system")
    ] = "ccc-citizen-portal",  # demo.citizen_identity.PORTAL (tests/cli checks they agree)
    demo: Annotated[
        bool, typer.Option("--demo", help="required: the token is signed with a published key")
    ] = False,
) -> None:
    """Print a citizen's ID token from the demo council's citizen sign-in (valid five minutes;
    only ``serve --demo`` trusts it), to exchange at /oauth2/token."""
    if not (demo or settings().demo):
        fail(
            "citizen-token signs with a published demo key, refused outside --demo "
            "(pass --demo, or BROKER_DEMO=1)",
            EXIT_USAGE,
        )
    require_demo()
    from demo.citizen_identity import demo_citizen_token

    with handled():
        typer.echo(demo_citizen_token(nhs_number, client))
