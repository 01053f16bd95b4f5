"""``broker token``: get an access token the way a partner system would (for curl and demos)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import httpx
import typer

from broker.auth.assertion import ASSERTION_TYPE, TOKEN_EXCHANGE_GRANT
from broker.auth.client_assertion import load_private_key, make_client_assertion
from broker.cli.common import EXIT_CHECK_FAILED, EXIT_USAGE, fail, settings
from broker.identity.token_exchange import ID_TOKEN_TYPE


def token(
    client_id: Annotated[str, typer.Option("--client-id", help="the registered client id")],
    key: Annotated[Path, typer.Option("--key", help="the client's private key (PEM)")],
    url: Annotated[
        str | None, typer.Option("--url", help="the broker's public URL [BROKER_PUBLIC_URL]")
    ] = None,
    scope: Annotated[str | None, typer.Option(help="ask for a subset of the scopes")] = None,
    kid: Annotated[str | None, typer.Option(help="key id [the key's thumbprint]")] = None,
    subject_token: Annotated[
        str | None,
        typer.Option(
            "--subject-token",
            help="an ID token to exchange (RFC 8693): the user's, or a citizen's for a "
            "citizen-facing system",
        ),
    ] = None,
) -> None:
    """Sign a client assertion, exchange it at /oauth2/token and print the access token."""
    base = (url or settings().public_url).rstrip("/")
    token_url = f"{base}/oauth2/token"
    try:
        private_key = load_private_key(key)
    except (OSError, ValueError) as e:
        fail(str(e), EXIT_USAGE)
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": make_client_assertion(client_id, private_key, token_url, kid=kid),
    }
    if scope:
        form["scope"] = scope
    if subject_token:
        form.update(
            grant_type=TOKEN_EXCHANGE_GRANT,
            subject_token=subject_token,
            subject_token_type=ID_TOKEN_TYPE,
        )
    try:
        response = httpx.post(token_url, data=form, timeout=10.0)
    except httpx.HTTPError as e:
        fail(f"cannot reach {token_url}: {e}", EXIT_USAGE)
    if response.status_code != 200:
        try:
            body = response.json()
            message = f"{body.get('error')}: {body.get('error_description')}"
        except ValueError:
            message = response.text[:200]
        fail(f"token refused ({response.status_code}) {message}", EXIT_CHECK_FAILED)
    typer.echo(response.json()["access_token"])
