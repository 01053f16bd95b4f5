"""Over HTTP: every administrative act is an entry of the tamper-evident
log (with its actor) beside its ``admin_events`` row, ``broker audit verify`` catches an altered
or deleted act, and the party registry refuses a second party with the same ODS code and ids
that could be taken for an existing party's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from broker.audit.verify import verify_log
from broker.cli.audit import app as audit_cli
from tests.support import LiveBroker, live_broker

COUNCIL = {"id": "calderbridge-city-council", "name": "Calderbridge Council", "kind": "council"}
HOSPITAL = {"id": "R9Z", "name": "Calderbridge Hospitals", "kind": "nhs", "ods_code": "R9Z"}


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[tuple[LiveBroker, str, str]]:
    with live_broker(tmp_path, f"sqlite:///{tmp_path / 'broker.db'}") as live:
        admin = live.token("admin-1", live.register("admin-1", ("admin",)))
        oversight = live.token("ico-1", live.register("ico-1", ("oversight",)))
        yield live, admin, oversight


def _post(live: LiveBroker, path: str, token: str, body: Any = None) -> Any:
    return live.http.post(path, json=body, headers={"Authorization": f"Bearer {token}"})


def _admin_entries(live: LiveBroker, token: str) -> list[dict[str, Any]]:
    response = live.get("/v1/exchanges", token, params={"kind": "admin", "limit": 500})
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def _acts(live: LiveBroker, token: str) -> dict[str, dict[str, Any]]:
    return {
        str(e["details"]["action"]) + " " + str(e["details"]["target"]): e
        for e in _admin_entries(live, token)
        if e["details"] and e["details"].get("table") == "admin_events"
    }


def test_party_and_suspension_are_log_entries_with_the_actor(
    broker: tuple[LiveBroker, str, str],
) -> None:
    live, admin, oversight = broker
    assert _post(live, "/v1/admin/parties", admin, COUNCIL).status_code == 201
    live.register("ccc-case-system", ("exchange",), party=COUNCIL["id"])
    response = _post(live, "/v1/admin/clients/ccc-case-system/suspend", admin)
    assert response.status_code == 200, response.text

    acts = _acts(live, oversight)
    party = acts[f"party.add {COUNCIL['id']}"]
    assert party["kind"] == "admin"
    assert party["client_id"] == "client:admin-1"
    assert party["party_id"] == COUNCIL["id"]
    assert party["details"]["actor"] == "client:admin-1"
    assert party["details"]["details"] == {"name": COUNCIL["name"], "kind": "council"}
    suspended = acts["client.suspend ccc-case-system"]
    assert suspended["client_id"] == "client:admin-1"
    assert suspended["party_id"] == COUNCIL["id"]
    # Each act's table row names its entry.
    with live.services.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT action, target, entry_id FROM admin_events ORDER BY id")
        ).all()
    logged = {(r.action, r.target): r.entry_id for r in rows}
    assert logged[("party.add", COUNCIL["id"])] == party["exchange_id"]
    assert logged[("client.suspend", "ccc-case-system")] == suspended["exchange_id"]


def test_second_party_with_an_ods_code_and_look_alike_ids_are_refused(
    broker: tuple[LiveBroker, str, str],
) -> None:
    live, admin, _ = broker
    assert _post(live, "/v1/admin/parties", admin, HOSPITAL).status_code == 201
    assert _post(live, "/v1/admin/parties", admin, COUNCIL).status_code == 201

    again = _post(live, "/v1/admin/parties", admin, {**HOSPITAL, "id": "r9z"})
    assert again.status_code == 409, again.text
    assert "'R9Z'" in again.json()["detail"]

    for look_alike in ("calderbridge-city-counciI", "ca1derbridge-city-council", "r9z"):
        body = {**COUNCIL, "id": look_alike}
        refused = _post(live, "/v1/admin/parties", admin, body)
        assert refused.status_code == 422, refused.text
        expected = "R9Z" if look_alike == "r9z" else COUNCIL["id"]
        assert f"{expected!r}" in json.dumps(refused.json())

    bad = _post(live, "/v1/admin/parties", admin, {**COUNCIL, "id": "city council!"})
    assert bad.status_code == 422
    ids = {p["id"] for p in live.get("/v1/admin/parties", admin).json()}
    assert ids == {"R9Z", COUNCIL["id"], "test-party"}
    # Refused acts leave no row and no entry.
    with live.services.engine.connect() as conn:
        targets = {r[0] for r in conn.execute(text("SELECT target FROM admin_events"))}
    assert not targets & {"r9z", "calderbridge-city-counciI", "ca1derbridge-city-council"}


def _verify(live: LiveBroker) -> list[str]:
    report = verify_log(live.services.engine, live.services.audit.signer.public_key)
    return [p.message for p in report.problems]


def _tamper(live: LiveBroker, sql: str) -> None:
    with live.services.engine.begin() as conn:
        conn.execute(text(sql))


def _cli_verify(live: LiveBroker, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("BROKER_DATABASE_URL", live.settings.database_url)
    monkeypatch.setenv("BROKER_KEYS_DIR", str(live.settings.keys_dir))
    monkeypatch.setenv("BROKER_PUBLIC_URL", live.settings.public_url)
    return CliRunner().invoke(audit_cli, ["verify", "--json"])


def test_verify_detects_an_altered_or_deleted_admin_act(
    broker: tuple[LiveBroker, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    live, admin, _ = broker
    assert _post(live, "/v1/admin/parties", admin, COUNCIL).status_code == 201
    live.services.audit.checkpoint_now()
    assert _verify(live) == []
    assert _cli_verify(live, monkeypatch).exit_code == 0

    # The table row altered: it no longer matches its entry.
    where = f"action = 'party.add' AND target = '{COUNCIL['id']}'"
    _tamper(live, f"UPDATE admin_events SET actor = 'client:someone-else' WHERE {where}")  # noqa: S608
    found = _verify(live)
    assert any("admin_events row" in m and "differs from log entry" in m for m in found), found
    result = _cli_verify(live, monkeypatch)
    assert result.exit_code == 1
    assert "party.add" in json.dumps(json.loads(result.output)["problems"])
    _tamper(live, f"UPDATE admin_events SET actor = 'client:admin-1' WHERE {where}")  # noqa: S608
    assert _verify(live) == []

    # The row deleted: its entry still records the act.
    with live.services.engine.connect() as conn:
        saved = conn.execute(text(f"SELECT * FROM admin_events WHERE {where}")).one()  # noqa: S608
    _tamper(live, f"DELETE FROM admin_events WHERE {where}")  # noqa: S608
    found = _verify(live)
    assert any("party.add" in m and "row is gone" in m for m in found), found
    with live.services.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO admin_events (id, at, actor, action, target, details, entry_id)"
                " VALUES (:id, :at, :actor, :action, :target, :details, :entry_id)"
            ),
            saved._asdict(),
        )
    assert _verify(live) == []

    # A row added by hand, naming no entry.
    _tamper(
        live,
        "INSERT INTO admin_events (at, actor, action, target, details)"
        " VALUES ('2030-01-01 00:00:00', 'cli:mallory', 'party.add', 'ghost', '{}')",
    )
    found = _verify(live)
    assert any("ghost" in m and "in no log entry" in m for m in found), found
    _tamper(live, "DELETE FROM admin_events WHERE target = 'ghost'")

    # The log entry itself altered, then deleted.
    with live.services.engine.connect() as conn:
        idx = conn.execute(
            text("SELECT idx FROM audit_entries WHERE exchange_id = :e"), {"e": saved.entry_id}
        ).scalar_one()
    _tamper(
        live,
        f"UPDATE audit_entries SET leaf = REPLACE(leaf, 'client:admin-1', 'client:admin-2')"  # noqa: S608
        f" WHERE idx = {idx}",
    )
    report = verify_log(live.services.engine, live.services.audit.signer.public_key)
    assert report.first_bad_entry == idx, report.problems
    _tamper(live, f"DELETE FROM audit_entries WHERE idx = {idx}")  # noqa: S608
    report = verify_log(live.services.engine, live.services.audit.signer.public_key)
    assert report.first_bad_entry == idx, report.problems
    messages = [p.message for p in report.problems]
    assert any("lost" in m or "missing" in m for m in messages), messages
    assert any(f"names log entry {saved.entry_id}" in m for m in messages), messages
    result = _cli_verify(live, monkeypatch)
    assert result.exit_code == 1
    assert json.loads(result.output)["first_bad_entry"] == idx
