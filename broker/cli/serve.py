"""``broker serve``: run the gateway (and with ``--demo``, everything the demo needs)."""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from adapters.demo.runtime import start_demo_sources
from broker.app import create_app
from broker.cli.common import EXIT_USAGE, console, fail, settings
from broker.console.demo import DEMO_OFFICERS
from broker.container import build_services
from broker.core.errors import ConfigurationError
from broker.demo import bootstrap
from broker.identity.demo import register_demo_identity_provider
from broker.notify.demo import register_demo_webhook
from broker.observability import configure_logging


def serve(
    demo: Annotated[
        bool, typer.Option("--demo", help="load demo parties, keys and sources")
    ] = False,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
) -> None:
    """Run the broker's HTTP gateway."""
    config = settings()
    configure_logging(config.log_level, config.log_json)
    clients: list[bootstrap.DemoClientInfo] = []
    demo_sources = None
    try:
        bindings = None
        if demo:
            config = bootstrap.demo_settings(config)
            clients = bootstrap.prepare(config, config.demo_dir / "keys")
            console.print("starting the demo source systems (synthetic Calderbridge) ...")
            demo_sources = start_demo_sources(config.demo_dir / "sources")
            bindings = demo_sources.bindings
        services = build_services(config, bindings=bindings)
    except ConfigurationError as e:
        if demo_sources is not None:
            demo_sources.stop()
        fail(f"the broker will not start: {e.detail}", EXIT_USAGE)
    if demo and demo_sources is not None:
        receiver = demo_sources.webhook_receiver
        register_demo_webhook(services.notifications.webhooks, receiver.url, receiver.secret)
        register_demo_identity_provider(services.identity.store)
        inbox = receiver.url.rsplit("/", 2)[0] + "/received"
        (config.demo_dir / "council-inbox-url").write_text(inbox + "\n")
        _print_demo(clients, config.public_url)
        console.print(
            f"Council children's services inbox (provider notifications): {inbox}",
            highlight=False,
            soft_wrap=True,
        )
        console.print(
            f"[bold]Governance console[/bold] {config.public_url}/console (demo accounts):",
            highlight=False,
        )
        for officer in DEMO_OFFICERS:
            console.print(
                f"  {officer.username:<20} password {officer.password:<26} "
                f"{officer.role.value:<16} {officer.party_id}",
                highlight=False,
                soft_wrap=True,
            )
    app = create_app(config, services)
    try:
        uvicorn.run(
            app, host=host, port=port, log_config=None, access_log=False, server_header=False
        )
    finally:
        if demo_sources is not None:
            demo_sources.stop()


def _print_demo(clients: list[bootstrap.DemoClientInfo], public_url: str) -> None:
    console.print("[bold]Demo partner systems[/bold] (client id, party, scopes, private key):")
    for c in clients:
        console.print(
            f"  {c.client_id:<24} {c.party_id:<27} {' '.join(c.scopes):<24} {c.key_path}",
            highlight=False,
            soft_wrap=True,
        )
    console.print(
        "Get a token:  [bold]TOKEN=$(.venv/bin/broker token --client-id r9z-ed-safeguarding "
        "--key var/demo/keys/r9z-ed-safeguarding.pem)[/bold]\n"
        f'Then:         curl -H "Authorization: Bearer $TOKEN" {public_url}/v1/whoami\n'
        f"API docs:     {public_url}/docs",
        highlight=False,
        soft_wrap=True,
    )
