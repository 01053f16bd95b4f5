"""``broker webhooks ...``: where providers are notified of exchanges of their data.

Every change is a logged admin action. ``add`` prints the signing secret once: hand it to the
provider out of band (it verifies deliveries with it, see ``broker.notify.signing``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Annotated

import typer
from rich.table import Table

from broker.cli.common import actor, console, handled, print_json, settings
from broker.db import migrate
from broker.db.engine import build_engine
from broker.notify.outbox import OutboxStore
from broker.notify.webhooks import WebhookRegistry
from broker.outbound import guard_for

app = typer.Typer(help="Webhooks that notify provider parties.", no_args_is_help=True)

Party = Annotated[str, typer.Option("--party", help="the provider party's id")]


@contextlib.contextmanager
def _stores() -> Iterator[tuple[WebhookRegistry, OutboxStore]]:
    config = settings()
    engine = build_engine(config.database_url, pooled=False)
    try:
        migrate.upgrade(engine)
        yield WebhookRegistry(engine, guard_for(config)), OutboxStore(engine)
    finally:
        engine.dispose()


@app.command("add")
def add(
    party: Party,
    url: Annotated[
        str,
        typer.Option(
            "--url",
            help="https URL; no loopback, private or metadata address unless allow-listed",
        ),
    ],
) -> None:
    """Register a party's webhook; prints its signing secret (shown only now)."""
    with handled(), _stores() as (hooks, _):
        hook = hooks.add(party, url, actor=actor())
    console.print(
        f"registered webhook of [bold]{party}[/bold]: {hook.url}", highlight=False, soft_wrap=True
    )
    typer.echo(f"signing secret (give it to {party}; it is not shown again): {hook.secret}")


@app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Registered webhooks (never their secrets)."""
    with handled(), _stores() as (hooks, _):
        rows = hooks.list()
    if as_json:
        print_json([{"party": h.party_id, "url": h.url, "active": h.active} for h in rows])
        return
    table = Table("party", "url", "active")
    for h in rows:
        table.add_row(h.party_id, h.url, "yes" if h.active else "no")
    console.print(table)


@app.command("remove")
def remove(party: Party) -> None:
    """Remove a party's webhook; its pending notifications wait for a new registration."""
    with handled(), _stores() as (hooks, _):
        hooks.remove(party, actor=actor())
    console.print(f"removed the webhook of {party}")


@app.command("rotate-secret")
def rotate_secret(party: Party) -> None:
    """Give a party's webhook a new signing secret (printed once)."""
    with handled(), _stores() as (hooks, _):
        secret = hooks.rotate_secret(party, actor=actor())
    typer.echo(f"new signing secret for {party}: {secret}")


@app.command("outbox")
def outbox(
    status: Annotated[str | None, typer.Option(help="pending, delivered or failed")] = None,
    party: Annotated[str | None, typer.Option("--party")] = None,
    limit: int = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Notifications and their delivery state (newest first)."""
    with handled(), _stores() as (_, store):
        rows = store.list(status=status, party_id=party, limit=limit)
        counts = store.counts()
    if as_json:
        print_json(
            {
                "counts": counts,
                "notifications": [
                    {
                        "id": r.id,
                        "exchange_id": r.exchange_id,
                        "party": r.party_id,
                        "type": r.event_type,
                        "status": r.status,
                        "attempts": r.attempts,
                        "last_error": r.last_error,
                    }
                    for r in rows
                ],
            }
        )
        return
    table = Table("id", "exchange", "party", "status", "attempts", "last error")
    for r in rows:
        table.add_row(
            r.id, r.exchange_id, r.party_id, r.status, str(r.attempts), r.last_error or ""
        )
    console.print(table)
    console.print(", ".join(f"{k}: {v}" for k, v in counts.items()))


@app.command("retry")
def retry(ids: Annotated[list[str], typer.Argument(help="ids of failed notifications")]) -> None:
    """Queue failed notifications again (after fixing the provider's webhook)."""
    with handled(), _stores() as (_, store):
        changed = store.retry(ids, int(time.time() * 1000))
    console.print(f"queued {changed} notification(s) again")
