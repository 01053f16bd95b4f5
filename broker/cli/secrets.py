"""``broker secrets ...``: the broker's own keys and secrets, kept outside the database."""

from __future__ import annotations

from typing import Annotated

import typer

from broker.auth.keyring import KeyRing, create_token_key, retire_token_key
from broker.cli.common import console, handled, print_json, settings
from broker.secrets_check import init_secrets

app = typer.Typer(help="The broker's own signing keys and pseudonym secret.", no_args_is_help=True)


@app.command("init")
def init() -> None:
    """Create whichever secrets are missing (token signing key, pseudonym key). Never overwrites."""
    with handled():
        created = init_secrets(settings())
    for line in created or ["nothing to do: every secret exists"]:
        console.print(line)


@app.command("rotate-token-key")
def rotate() -> None:
    """Make a new token signing key current. Tokens signed with older keys stay valid."""
    with handled():
        kid = create_token_key(settings().keys_dir)
    console.print(f"new signing key {kid}; retire the old one after the token lifetime")


@app.command("retire-token-key")
def retire(kid: str) -> None:
    """Remove an old token signing key: tokens it signed stop verifying."""
    with handled():
        retire_token_key(settings().keys_dir, kid)
    console.print(f"retired {kid}")


@app.command("list-token-keys")
def list_keys(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The token signing keys; the newest signs."""
    with handled():
        ring = KeyRing.load(settings().keys_dir)
    if as_json:
        print_json({"current": ring.current().kid, "keys": ring.kids()})
        return
    for kid in ring.kids():
        console.print(kid + ("  (current)" if kid == ring.current().kid else ""))
