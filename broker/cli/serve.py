"""``broker serve``: run the gateway (and with ``--demo``, everything the demo needs).

With ``--workers N`` (or ``BROKER_WORKERS``) above 1, everything here runs once in this process
and :mod:`broker.workers` then serves from N processes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
import uvicorn

from broker.api.connections import server_options
from broker.app import create_app
from broker.cli.common import EXIT_USAGE, console, fail, require_demo, settings
from broker.container import Services, build_services
from broker.core.errors import ConfigurationError
from broker.observability import configure_logging
from broker.settings import Settings
from broker.workers import run_workers

if TYPE_CHECKING:  # the demo is imported only with --demo: the broker image leaves it out
    from demo.bootstrap import DemoClientInfo
    from demo.sources.runtime import DemoSources


def serve(
    demo: Annotated[
        bool, typer.Option("--demo", help="load demo parties, keys and sources")
    ] = False,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            show_default="BROKER_WORKERS, else 1",
            help="server processes sharing the port (a Python process uses about one core); "
            "set-up runs once before they start; without BROKER_REDIS_URL each process enforces "
            "1/N of every per-client rate limit, so the configured rate stays the ceiling",
        ),
    ] = None,
    pin_workers: Annotated[
        bool | None,
        typer.Option(
            "--pin-workers/--no-pin-workers",
            show_default="BROKER_PIN_WORKERS, else no",
            help="with several processes, keep each on a core of its own (Linux CPU affinity): "
            "fewer hand-offs between cores per request, for a host that runs the broker alone",
        ),
    ] = None,
) -> None:
    """Run the broker's HTTP gateway.

    With --workers N above 1 (or BROKER_WORKERS), N processes serve on one port; SIGINT or
    SIGTERM stops them all.
    """
    config = settings()
    configure_logging(config.log_level, config.log_json)
    if demo:
        require_demo()
        from demo import bootstrap
        from demo.sources.runtime import DEMO_BINDINGS_FILE, start_demo_sources

        config = bootstrap.demo_settings(config)
    if workers is not None:
        config = config.model_copy(update={"workers": workers})
    if pin_workers is not None:
        config = config.model_copy(update={"pin_workers": pin_workers})
    clients: list[DemoClientInfo] = []
    demo_sources = None
    try:
        bindings = None
        if demo:
            clients = bootstrap.prepare(config, config.demo_dir / "keys")
            console.print("starting the demo source systems (synthetic Calderbridge) ...")
            demo_sources = start_demo_sources(config.demo_dir / "sources")
            bindings = demo_sources.bindings
        # Secrets checked and migrations run here, once, also when workers serve.
        services = build_services(config, bindings=bindings)
    except ConfigurationError as e:
        if demo_sources is not None:
            demo_sources.stop()
        fail(f"the broker will not start: {e.detail}", EXIT_USAGE)
    try:
        if demo_sources is not None:
            _start_demo(services, demo_sources, clients, config)
        if config.workers == 1:
            app = create_app(config, services)
            uvicorn.run(app, host=host, port=port, **server_options(config))
        else:
            services.close()  # each worker builds its own
            console.print(f"serving with {config.workers} worker processes", highlight=False)
            run_workers(
                config,
                host=host,
                port=port,
                bindings_file=None if demo_sources is None else DEMO_BINDINGS_FILE,
                bindings_variables=None if demo_sources is None else demo_sources.variables,
            )
    finally:
        if demo_sources is not None:
            demo_sources.stop()


def _start_demo(
    services: Services,
    sources: DemoSources,
    clients: list[DemoClientInfo],
    config: Settings,
) -> None:
    """Register the demo's webhook (its identity providers: demo/bootstrap.py), then print how
    to use the demo."""
    from demo.console import DEMO_OFFICERS
    from demo.notify import register_demo_webhook

    receiver = sources.webhook_receiver
    register_demo_webhook(services.notifications.webhooks, receiver.url, receiver.secret)
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


def _print_demo(clients: list[DemoClientInfo], public_url: str) -> None:
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
