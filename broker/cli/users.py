"""``broker users ...``: suspend and reinstate a verified user of a party (the identity
provider's issuer and the user's subject there), and list the suspended users.

A suspension holds on every running instance within 2 seconds. Every change is a logged admin
action (``user.suspend``, ``user.reinstate``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated

import typer
from rich.table import Table

from broker.cli.common import actor, console, handled, print_json, settings
from broker.db import migrate
from broker.db.engine import build_engine
from broker.identity.suspensions import UserSuspensions

app = typer.Typer(help="Verified users under oversight: suspend, reinstate.", no_args_is_help=True)

Party = Annotated[str, typer.Option("--party", help="the user's party id")]
Issuer = Annotated[str, typer.Option(help="the identity provider's issuer (the tokens' iss)")]
Subject = Annotated[str, typer.Option(help="the user's subject at that provider")]
Reason = Annotated[str, typer.Option(help="why (kept with the admin event)")]


@contextlib.contextmanager
def _store() -> Iterator[UserSuspensions]:
    engine = build_engine(settings().database_url, pooled=False)
    try:
        migrate.upgrade(engine)
        yield UserSuspensions(engine)
    finally:
        engine.dispose()


@app.command("suspend")
def suspend(party: Party, issuer: Issuer, subject: Subject, reason: Reason) -> None:
    """Suspend a verified user of a party: no token, no answer, on every instance within 2 s."""
    with handled(), _store() as store:
        store.suspend(party, issuer, subject, reason=reason, actor=actor())
    console.print(f"suspended user {subject} ({issuer}) of {party}", highlight=False)


@app.command("reinstate")
def reinstate(party: Party, issuer: Issuer, subject: Subject, reason: Reason) -> None:
    """Reinstate a suspended user."""
    with handled(), _store() as store:
        store.reinstate(party, issuer, subject, reason=reason, actor=actor())
    console.print(f"reinstated user {subject} ({issuer}) of {party}", highlight=False)


@app.command("suspended")
def suspended(
    party: Annotated[str | None, typer.Option("--party", help="only this party's")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The suspended users (of one party), newest first."""
    with handled(), _store() as store:
        rows = store.list(party)
    if as_json:
        print_json([s.to_json() for s in rows])
        return
    table = Table("party", "issuer", "subject", "by", "reason")
    for s in rows:
        table.add_row(s.party_id, s.issuer, s.subject, s.suspended_by, s.reason)
    console.print(table)
