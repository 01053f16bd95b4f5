"""``broker webhooks`` as an administrator runs it, and the worker the gateway starts."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from broker.cli.main import app
from broker.db.engine import build_engine
from broker.db.tables import admin_events
from broker.notify.tables import webhooks
from demo.notify import register_demo_webhook
from demo.parties import COUNCIL
from demo.sources.webhook_receiver import DemoWebhookReceiver
from tests.notify.conftest import CHILD, notice
from tests.support import live_broker

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("BROKER_DATABASE_URL", url)
    monkeypatch.setenv("BROKER_KEYS_DIR", str(tmp_path / "keys"))
    code, out = run("parties", "add", "--id", COUNCIL, "--name", "Council", "--kind", "council")
    assert code == 0, out
    return url


def test_add_list_rotate_remove_each_logged_without_the_secret(cli_env: str) -> None:
    code, out = run("webhooks", "add", "--party", COUNCIL, "--url", "https://ccc.example/hooks")
    assert code == 0, out
    secret = out.rsplit(": ", 1)[1].strip()
    assert secret.startswith("whsec_")
    code, out = run("webhooks", "list", "--json")
    assert code == 0
    assert json.loads(out) == [
        {"party": COUNCIL, "url": "https://ccc.example/hooks", "active": True}
    ]
    assert secret not in out
    code, out = run("webhooks", "rotate-secret", "--party", COUNCIL)
    assert code == 0
    assert "whsec_" in out
    assert secret not in out
    code, out = run("webhooks", "add", "--party", COUNCIL, "--url", "https://ccc.example/2")
    assert code == 1
    assert "already has a webhook" in out
    assert run("webhooks", "remove", "--party", COUNCIL)[0] == 0
    assert run("webhooks", "remove", "--party", COUNCIL)[0] == 2
    engine = build_engine(cli_env)
    with engine.connect() as conn:
        events = conn.execute(
            sa.select(admin_events.c.action, admin_events.c.details).where(
                admin_events.c.action.like("webhooks.%")
            )
        ).all()
        assert conn.execute(sa.select(webhooks)).all() == []
    engine.dispose()
    assert [a for a, _ in events] == ["webhooks.add", "webhooks.rotate-secret", "webhooks.remove"]
    assert all("whsec_" not in json.dumps(d) for _, d in events)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        pytest.param("http://ccc.example/hooks", "must be https", id="plain-http"),
        pytest.param("ftp://ccc.example/", "absolute http(s) URL", id="ftp"),
        pytest.param("https://u:p@ccc.example/", "credentials", id="credentials"),
        pytest.param("https://ccc.example/#x", "fragment", id="fragment"),
        pytest.param("/relative", "absolute http(s) URL", id="relative"),
    ],
)
def test_unsafe_urls_are_refused(cli_env: str, url: str, problem: str) -> None:
    code, out = run("webhooks", "add", "--party", COUNCIL, "--url", url)
    assert code == 2
    assert problem in out


def test_an_unknown_party_is_a_usage_error(cli_env: str) -> None:
    code, out = run("webhooks", "add", "--party", "nobody", "--url", "https://x.example/")
    assert code == 2
    assert "no party 'nobody'" in out


def test_outbox_lists_notifications_by_state(cli_env: str) -> None:
    code, out = run("webhooks", "outbox", "--json")
    assert code == 0
    assert json.loads(out)["counts"] == {"pending": 0, "delivered": 0, "failed": 0}


def test_the_gateway_delivers_what_the_pipeline_queues(
    tmp_path: Path, receiver: DemoWebhookReceiver
) -> None:
    with live_broker(tmp_path, f"sqlite:///{tmp_path / 'live.db'}") as broker:
        services = broker.services
        services.registry.add_party(COUNCIL, "Council", "council", None, actor="test")
        services.registry.add_party("R9Z", "Hospital", "nhs", "R9Z", actor="test")
        register_demo_webhook(services.notifications.webhooks, receiver.url, receiver.secret)
        write = services.notifications.writer(notice(), subject=CHILD)
        with services.engine.begin() as conn:
            write(conn)
        services.notifications.wake()
        deadline = time.monotonic() + 10
        while not receiver.snapshot() and time.monotonic() < deadline:
            time.sleep(0.02)
    [event] = receiver.snapshot()
    assert event["data"]["subject"]["value"] == CHILD.value
