"""``broker console``: officer accounts for the governance console."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from broker.auth.registry import Registry
from broker.cli.common import EXIT_USAGE, console, fail, settings
from broker.console.accounts import Accounts, Role
from broker.core.errors import BrokerError
from broker.db import migrate
from broker.db.engine import build_engine

app = typer.Typer(help="Governance console accounts.", no_args_is_help=True)


@app.command("add-user")
def add_user(
    username: Annotated[str, typer.Option(help="sign-in name (lowercase)")],
    party: Annotated[str, typer.Option(help="the officer's party id")],
    role: Annotated[Role, typer.Option(help="governance, oversight, agreement-admin, auditor")],
    display_name: Annotated[str | None, typer.Option(help="name shown in the console")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from standard input")
    ] = False,
) -> None:
    """Create a console account (the password is prompted for, or read with --password-stdin)."""
    config = settings()
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    engine = build_engine(config.database_url, pooled=False)
    try:
        migrate.upgrade(engine)
        accounts = Accounts(engine)
        if party not in {p.id for p in Registry(engine).list_parties()}:
            fail(f"no party {party} in the registry", EXIT_USAGE)
        accounts.add_user(username, party, role, password, display_name=display_name)
    except BrokerError as e:
        fail(e.detail, EXIT_USAGE)
    finally:
        engine.dispose()
    console.print(f"console user {username} ({role.value}, {party}) added", highlight=False)


@app.command("list-users")
def list_users(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List console accounts."""
    config = settings()
    engine = build_engine(config.database_url, pooled=False)
    try:
        migrate.upgrade(engine)
        users = Accounts(engine).list_users()
    finally:
        engine.dispose()
    rows = [
        {"username": u.username, "party": u.party_id, "role": u.role.value, "active": u.active}
        for u in users
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    for r in rows:
        console.print(f"{r['username']:<28} {r['role']:<16} {r['party']}", highlight=False)
