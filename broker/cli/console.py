"""``broker console``: officer accounts for the governance console."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Annotated

import typer
from sqlalchemy import Engine

from broker.auth.registry import Registry
from broker.cli.common import EXIT_USAGE, actor, console, fail, handled, settings
from broker.console.accounts import Accounts, Role
from broker.console.enrolment import Enrolment
from broker.core.errors import BrokerError
from broker.db import migrate
from broker.db.engine import build_engine

app = typer.Typer(help="Governance console accounts.", no_args_is_help=True)

Username = Annotated[str, typer.Option(help="the console account's username")]
Party = Annotated[str, typer.Option(help="the party the account belongs to (yours)")]


@contextlib.contextmanager
def _engine() -> Iterator[Engine]:
    engine = build_engine(settings().database_url, pooled=False)
    try:
        migrate.upgrade(engine)
        yield engine
    finally:
        engine.dispose()


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
        names = {p.id: p.name for p in Registry(engine).list_parties()}
        if party not in names:
            fail(f"no party {party} in the registry", EXIT_USAGE)
        accounts.add_user(
            username, party, role, password, display_name=display_name, context=(names[party],)
        )
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


@app.command("link-oidc")
def link_oidc(
    username: Username,
    party: Party,
    subject: Annotated[str, typer.Option(help="the officer's sub at the identity provider")],
    issuer: Annotated[
        str | None, typer.Option(help="the provider (default BROKER_CONSOLE_OIDC_ISSUER)")
    ] = None,
) -> None:
    """Link an account to its one identity-provider issuer and subject (sign-in matches these)."""
    chosen = issuer or settings().console_oidc_issuer
    if not chosen:
        fail("give --issuer (BROKER_CONSOLE_OIDC_ISSUER is not set)", EXIT_USAGE)
    with handled(), _engine() as engine:
        Enrolment(engine).link(username, party, chosen, subject, actor())
    console.print(f"console user {username} linked to {subject} at {chosen}", highlight=False)


@app.command("unlink-oidc")
def unlink_oidc(username: Username, party: Party) -> None:
    """Remove an account's identity-provider link (password sign-in only)."""
    with handled(), _engine() as engine:
        Enrolment(engine).unlink(username, party, actor())
    console.print(f"console user {username} unlinked", highlight=False)


@app.command("suspend-user")
def suspend_user(username: Username, party: Party) -> None:
    """Suspend an account: no sign-in by any route, and its sessions end."""
    with handled(), _engine() as engine:
        Enrolment(engine).set_active(username, party, False, actor())
    console.print(f"console user {username} suspended", highlight=False)


@app.command("reinstate-user")
def reinstate_user(username: Username, party: Party) -> None:
    """Reinstate a suspended account (and clear its sign-in lock)."""
    with handled(), _engine() as engine:
        Enrolment(engine).set_active(username, party, True, actor())
    console.print(f"console user {username} reinstated", highlight=False)


@app.command("list-sessions")
def list_sessions(
    username: Username, party: Party, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """List an account's sessions (handle, started, last seen)."""
    with handled(), _engine() as engine:
        Enrolment(engine).check_party(username, party)
        found = Accounts(engine).list_sessions(username)
    rows = [{"handle": s.handle, "created_ms": s.created_ms, "seen_ms": s.seen_ms} for s in found]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    for r in rows:
        console.print(f"{r['handle']}  {r['created_ms']}  {r['seen_ms']}", highlight=False)


@app.command("end-sessions")
def end_sessions(
    username: Username,
    party: Party,
    session: Annotated[
        str | None, typer.Option(help="one session's handle (default: all of them)")
    ] = None,
) -> None:
    """End one or all of an account's sessions."""
    with handled(), _engine() as engine:
        ended = Enrolment(engine).end_sessions(username, party, actor(), session)
    console.print(f"{ended} session(s) of {username} ended", highlight=False)
