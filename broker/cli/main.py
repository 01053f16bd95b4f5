"""The ``broker`` command: one Typer app with a sub-app per area."""

from __future__ import annotations

import typer

from broker.cli import (
    agreements,
    attestation,
    audit,
    console,
    db,
    idp,
    keys,
    policy,
    register,
    registry,
    secrets,
    users,
    webhooks,
)
from broker.cli.serve import serve
from broker.cli.token import token

app = typer.Typer(
    help="Inter-agency information sharing broker.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("serve")(serve)
app.command("token")(token)
app.add_typer(registry.parties_app, name="parties")
app.add_typer(registry.clients_app, name="clients")
app.add_typer(secrets.app, name="secrets")
app.add_typer(db.app, name="db")
app.add_typer(keys.app, name="keys")
app.add_typer(agreements.app, name="agreements")
app.add_typer(policy.app, name="policy")
app.add_typer(audit.app, name="audit")
app.add_typer(attestation.app, name="attestation")
app.add_typer(webhooks.app, name="webhooks")
app.add_typer(idp.app, name="idp")
app.add_typer(console.app, name="console")
app.add_typer(users.app, name="users")
app.add_typer(register.app, name="register")


def main() -> None:
    app()
