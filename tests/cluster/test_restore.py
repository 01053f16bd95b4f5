"""A PostgreSQL backup restored after more exchanges were logged: the party's kept checkpoint shows
the lost tail.

A broker on PostgreSQL (in process) logs some exchanges; a party fetches and keeps the signed
checkpoint (``GET /v1/audit/checkpoint``, as any party may); the operator takes a ``pg_dump``;
more exchanges, and the party keeps a newer checkpoint. The dump is restored. ``broker audit
verify --against`` the newer checkpoint then says how many entries it covers that the log no
longer has, and exits 1; against the older one (taken before the dump) the log verifies.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bench.topology import create_schema, drop_schema, libpq_url
from broker.cli.audit import app as audit_app
from broker.container import Services
from demo.notify import register_demo_webhook
from tests.cluster.conftest import require
from tests.exchange.helpers import post, safeguarding
from tests.support import LiveBroker, demo_key, live_broker

pytestmark = pytest.mark.postgres


def _kept_checkpoint(broker: LiveBroker, path: Path) -> int:
    """The party's copy of the latest signed checkpoint, as fetched; its tree size."""
    broker.services.audit.checkpoint_now()  # the periodic job, at once
    token = broker.token("wcp-mash", demo_key("wcp-mash"))
    response = broker.get("/v1/audit/checkpoint", token)
    assert response.status_code == 200, response.text
    path.write_text(response.text)
    return int(response.json()["tree_size"])


def _register_webhook(services: Services, receiver: Any) -> None:
    register_demo_webhook(services.notifications.webhooks, receiver.url, receiver.secret)


def _exchanges(broker: LiveBroker, n: int) -> None:
    for _ in range(n):
        response = post(broker, "r9z-ed-safeguarding", safeguarding())
        assert response.status_code == 200, response.text


def _verify(monkeypatch: pytest.MonkeyPatch, broker: LiveBroker, *against: Path) -> Any:
    monkeypatch.setenv("BROKER_DATABASE_URL", broker.settings.database_url)
    monkeypatch.setenv("BROKER_KEYS_DIR", str(broker.settings.keys_dir))
    monkeypatch.setenv("BROKER_PUBLIC_URL", broker.settings.public_url)
    args = ["verify", *(a for path in against for a in ("--against", str(path)))]
    json_result = CliRunner().invoke(audit_app, [*args, "--json"])
    text_result = CliRunner().invoke(audit_app, args)
    assert json_result.exit_code == text_result.exit_code, text_result.output
    return json_result.exit_code, json.loads(json_result.stdout), text_result.stdout


def test_a_restored_backup_is_caught_by_the_checkpoint_a_party_kept(
    tmp_path: Path, demo_sources: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = require(haproxy=False, redis=False, pg_dump=True)
    receiver = demo_sources.webhook_receiver
    schema, url = create_schema(base)
    dump = tmp_path / "broker.dump"
    older, newer = tmp_path / "kept-older.json", tmp_path / "kept-newer.json"
    try:
        with live_broker(
            tmp_path,
            url,
            demo=True,
            bindings=demo_sources.bindings,
            customise=lambda services: _register_webhook(services, receiver),
        ) as broker:
            notified = len(receiver.snapshot())
            _exchanges(broker, 3)
            older_size = _kept_checkpoint(broker, older)
            subprocess.run(
                [
                    "pg_dump",
                    "--format=custom",
                    f"--schema={schema}",
                    f"--file={dump}",
                    libpq_url(base),
                ],
                check=True,
                capture_output=True,
                timeout=120,
            )
            _exchanges(broker, 4)
            newer_size = _kept_checkpoint(broker, newer)
            assert newer_size > older_size
            code, report, _ = _verify(monkeypatch, broker, older, newer)
            assert (code, report["ok"], report["lost_entries"]) == (0, True, 0)
            # The council is told of each check: let those deliveries finish before stopping.
            deadline = time.monotonic() + 30
            while len(receiver.snapshot()) < notified + 7 and time.monotonic() < deadline:
                time.sleep(0.1)

        # The database is lost and restored from the backup.
        drop_schema(base, schema)
        subprocess.run(
            ["pg_restore", f"--dbname={libpq_url(base)}", str(dump)],
            check=True,
            capture_output=True,
            timeout=120,
        )

        code, report, text = _verify(monkeypatch, broker, newer)
        assert code == 1
        assert report["ok"] is False
        restored = report["entries_checked"]
        assert older_size <= restored < newer_size
        assert report["lost_entries"] == newer_size - restored
        message = (
            f"the last {newer_size - restored} entries ({restored}..{newer_size - 1}) are lost"
        )
        assert any(message in p["message"] for p in report["problems"]), report
        assert str(newer) in text
        assert f"LOST TAIL: {newer_size - restored} entries" in text

        # The checkpoint the party kept before the backup still matches the restored log.
        code, report, _ = _verify(monkeypatch, broker, older)
        assert (code, report["ok"], report["lost_entries"]) == (0, True, 0)
    finally:
        drop_schema(base, schema)
