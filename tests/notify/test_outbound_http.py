"""Outbound URLs that cannot reach inside, over real HTTP on loopback: registration through the
CLI refused naming the address class, a delivery to an allowed first hop whose redirect points
inside is not followed, a refused address is refused again at connection time (the check is
not only at registration), and an identity provider's key set on loopback is not fetched."""

from __future__ import annotations

import asyncio
import random
import urllib.parse
from pathlib import Path

import pytest
from aiohttp import web
from sqlalchemy import Engine
from typer.testing import CliRunner

from broker.cli.main import app as cli
from broker.identity.jwks import HttpJwksFetcher
from broker.notify.delivery import DeliveryPolicy, DeliveryWorker
from broker.notify.outbox import OutboxStore
from broker.notify.sealing import SubjectSealer
from broker.notify.webhooks import WebhookRegistry
from broker.outbound import OutboundGuard
from demo.parties import COUNCIL
from demo.sources.runtime import ServerThread
from demo.sources.webhook_receiver import DemoWebhookReceiver
from tests.notify.conftest import Clock, enqueue, outbox_row
from tests.support import LOOPBACK_GUARD

runner = CliRunner()

ISSUE_URLS = [
    ("https://169.254.169.254/latest/meta-data/", "metadata"),
    ("https://10.0.0.5:8443/", "private"),
    ("http://127.0.0.1:22/", "loopback"),
    ("http://localhost:6379/", "loopback"),
    ("http://[::1]:5432/", "loopback"),
]


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROKER_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("BROKER_KEYS_DIR", str(tmp_path / "keys"))
    monkeypatch.delenv("BROKER_OUTBOUND_ALLOW", raising=False)
    args = ["parties", "add", "--id", COUNCIL, "--name", "Council", "--kind", "council"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(("url", "address_class"), ISSUE_URLS)
def test_the_cli_refuses_each_inside_url_naming_its_class(
    cli_env: None, url: str, address_class: str
) -> None:
    result = runner.invoke(cli, ["webhooks", "add", "--party", COUNCIL, "--url", url])
    assert result.exit_code == 2, result.output
    output = " ".join(result.output.split())  # the console wraps long lines
    assert f"{address_class} address" in output
    assert "BROKER_OUTBOUND_ALLOW" in output
    assert runner.invoke(cli, ["webhooks", "list", "--json"]).output.strip() == "[]"


def test_the_cli_registers_loopback_when_the_operator_allows_it(
    cli_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BROKER_OUTBOUND_ALLOW", "127.0.0.1:22")
    args = ["webhooks", "add", "--party", COUNCIL, "--url", "http://127.0.0.1:22/"]
    assert runner.invoke(cli, args).exit_code == 0
    args = ["idp", "add", "--party", COUNCIL, "--issuer", "https://idp.example"]
    refused = runner.invoke(cli, [*args, "--jwks-url", "http://127.0.0.1:23/jwks"])
    assert refused.exit_code == 2
    assert "loopback address" in " ".join(refused.output.split())


def _worker(
    engine: Engine, clock: Clock, sealer: SubjectSealer, guard: OutboundGuard
) -> DeliveryWorker:
    return DeliveryWorker(
        OutboxStore(engine),
        WebhookRegistry(engine, guard),
        DeliveryPolicy(),
        sealer=sealer,
        clock=clock,
        rng=random.Random(7),
    )


def test_a_redirect_inside_from_an_allowed_first_hop_is_not_followed(
    engine: Engine, clock: Clock, sealer: SubjectSealer, servers: ServerThread
) -> None:
    inside = DemoWebhookReceiver()
    inside.url = servers.serve(inside.app()) + "/webhooks/broker"
    hits: list[str] = []

    async def moved(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(status=307, headers={"Location": inside.url})

    app = web.Application()
    app.router.add_post("/hook", moved)
    first = servers.serve(app) + "/hook"
    # The allow-list covers the first hop only (its port), not the redirect's target.
    only_first = OutboundGuard.from_entries([f"127.0.0.1:{urllib.parse.urlsplit(first).port}"])
    WebhookRegistry(engine, only_first).add(COUNCIL, first, actor="test")
    row_id = enqueue(engine, clock, sealer)
    assert asyncio.run(_worker(engine, clock, sealer, only_first).run_once()) == 1
    row = outbox_row(engine, row_id)
    assert (row.status, row.last_error) == ("pending", "HTTP 307 from the webhook")
    assert hits == ["/hook"]
    assert inside.attempts == 0


def test_a_refused_address_is_refused_at_connection_time_too(
    engine: Engine, clock: Clock, sealer: SubjectSealer, servers: ServerThread
) -> None:
    """Registered while the operator allowed loopback; the allow-list changed since: the worker
    connects nowhere, by address or by name."""
    receiver = DemoWebhookReceiver()
    base = servers.serve(receiver.app())
    port = urllib.parse.urlsplit(base).port
    for url in (f"{base}/webhooks/broker", f"http://localhost:{port}/webhooks/broker"):
        registry = WebhookRegistry(engine, LOOPBACK_GUARD)
        if registry.get(COUNCIL) is not None:
            registry.remove(COUNCIL, actor="test")
        registry.add(COUNCIL, url, actor="test", secret=receiver.secret)
        row_id = enqueue(engine, clock, sealer)
        assert asyncio.run(_worker(engine, clock, sealer, OutboundGuard()).run_once()) >= 1
        row = outbox_row(engine, row_id)
        assert row.status == "pending"
        assert row.last_error is not None
        assert "loopback address" in row.last_error
    assert receiver.attempts == 0


def test_a_key_set_on_loopback_is_not_fetched_unless_allowed(servers: ServerThread) -> None:
    fetched: list[str] = []

    async def jwks(request: web.Request) -> web.Response:
        fetched.append(request.path)
        return web.json_response({"keys": []})

    app = web.Application()
    app.router.add_get("/jwks", jwks)
    url = servers.serve(app) + "/jwks"
    refusing, allowing = HttpJwksFetcher(2.0), HttpJwksFetcher(2.0, LOOPBACK_GUARD)
    try:
        with pytest.raises(Exception, match="loopback address"):
            refusing.fetch(url)
        assert fetched == []
        assert allowing.fetch(url) == {"keys": []}
        assert fetched == ["/jwks"]
    finally:
        refusing.close()
        allowing.close()
