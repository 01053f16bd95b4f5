"""The registry and token commands, as an administrator would run them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from broker.cli.main import app
from broker.db.engine import build_engine
from broker.db.tables import admin_events
from tests.support import live_broker, new_key

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {
        "BROKER_DATABASE_URL": database_url,
        "BROKER_KEYS_DIR": str(tmp_path / "keys"),
        "BROKER_PSEUDONYM_KEY_FILE": str(tmp_path / "keys" / "pseudonym.key"),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def run(*args: str) -> tuple[int, str]:
    """Exit code and stdout (plus stderr on failure, where the error message goes)."""
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout if result.exit_code == 0 else result.output


def write_public_pem(tmp_path: Path, name: str = "client") -> tuple[Path, Path]:
    key = new_key()
    private = tmp_path / f"{name}.pem"
    public = tmp_path / f"{name}.pub.pem"
    private.write_bytes(key.as_pem(private=True))
    public.write_bytes(key.as_pem(private=False))
    return private, public


def test_parties_and_clients_lifecycle(tmp_path: Path, env: dict[str, str]) -> None:
    code, out = run(
        "parties",
        "add",
        "--id",
        "R9Z",
        "--name",
        "Calderbridge Hospitals",
        "--kind",
        "nhs",
        "--ods-code",
        "R9Z",
    )
    assert code == 0, out
    code, out = run("parties", "list", "--json")
    assert json.loads(out) == [
        {"id": "R9Z", "name": "Calderbridge Hospitals", "kind": "nhs", "ods_code": "R9Z"}
    ]
    _, public = write_public_pem(tmp_path)
    code, out = run(
        "clients",
        "add",
        "--party",
        "R9Z",
        "--client-id",
        "ed-system",
        "--public-key",
        str(public),
        "--scopes",
        "exchange",
    )
    assert code == 0, out
    listed = json.loads(run("clients", "list", "--json")[1])
    assert listed[0]["id"] == "ed-system"
    assert listed[0]["status"] == "active"
    kid = listed[0]["kids"][0]
    assert run("clients", "suspend", "ed-system")[0] == 0
    assert json.loads(run("clients", "list", "--json")[1])[0]["status"] == "suspended"
    _, second = write_public_pem(tmp_path, "second")
    assert run("clients", "add-key", "ed-system", "--public-key", str(second))[0] == 0
    assert run("clients", "remove-key", "ed-system", "--kid", kid)[0] == 0
    assert kid not in json.loads(run("clients", "list", "--json")[1])[0]["kids"]
    engine = build_engine(env["BROKER_DATABASE_URL"])
    with engine.connect() as conn:
        actions = [
            r.action
            for r in conn.execute(sa.select(admin_events.c.action).order_by(admin_events.c.id))
        ]
    engine.dispose()
    assert actions == [
        "party.add",
        "client.add",
        "client.suspend",
        "client.add-key",
        "client.remove-key",
    ]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        pytest.param(
            ("parties", "add", "--id", "x", "--name", "X", "--kind", "other"),
            2,
            "not valid",
            id="bad-party-id",
        ),
        pytest.param(
            ("parties", "add", "--id", "p1", "--name", "X", "--kind", "bank"),
            2,
            "kind",
            id="bad-kind",
        ),
        pytest.param(("clients", "suspend", "nobody"), 2, "no client", id="unknown-client"),
        pytest.param(
            ("clients", "add", "--party", "p1", "--client-id", "c1"), 2, "exactly one", id="no-key"
        ),
    ],
)
def test_usage_errors_exit_2(
    env: dict[str, str], args: tuple[str, ...], code: int, message: str
) -> None:
    exit_code, out = run(*args)
    assert exit_code == code
    assert message in out


def test_a_duplicate_party_exits_1(env: dict[str, str]) -> None:
    assert run("parties", "add", "--id", "p1", "--name", "X", "--kind", "other")[0] == 0
    code, out = run("parties", "add", "--id", "p1", "--name", "X", "--kind", "other")
    assert code == 1
    assert "already exists" in out


def test_broker_token_prints_a_working_token(tmp_path: Path) -> None:
    with live_broker(tmp_path, f"sqlite:///{tmp_path / 'b.db'}") as live:
        private, _ = write_public_pem(tmp_path)
        from broker.auth.client_assertion import load_private_key

        live.register("c1", ("exchange",), key=load_private_key(private))
        code, out = run(
            "token", "--client-id", "c1", "--key", str(private), "--url", live.settings.public_url
        )
        assert code == 0, out
        token = out.strip()
        assert live.get("/v1/whoami", token).json()["client_id"] == "c1"
        code, out = run(
            "token", "--client-id", "c2", "--key", str(private), "--url", live.settings.public_url
        )
        assert code == 1
        assert "invalid_client" in out


def flat(out: str) -> str:
    """Output with the terminal's line wrapping undone."""
    return " ".join(out.split())


def _actions(env: dict[str, str]) -> list[tuple[str, str, dict[str, Any]]]:
    engine = build_engine(env["BROKER_DATABASE_URL"])
    with engine.connect() as conn:
        rows = conn.execute(sa.select(admin_events).order_by(admin_events.c.id)).all()
    engine.dispose()
    return [(r.action, r.target, r.details) for r in rows]


def _two_systems(tmp_path: Path) -> None:
    assert (
        run("parties", "add", "--id", "R9Z", "--name", "H", "--kind", "nhs", "--ods-code", "R9Z")[0]
        == 0
    )
    for client, scopes in (("ed-system", "exchange"), ("ig-office", "governance")):
        _, public = write_public_pem(tmp_path, client)
        args = ("--client-id", client, "--public-key", str(public), "--scopes", scopes)
        assert run("clients", "add", "--party", "R9Z", *args)[0] == 0


def test_binding_a_system_to_roles(tmp_path: Path, env: dict[str, str]) -> None:
    _two_systems(tmp_path)
    # A new system with the exchange scope acts for no role: listed as unbound.
    listed = {c["id"]: c for c in json.loads(run("clients", "list", "--json")[1])}
    assert listed["ed-system"]["unbound"] is True
    assert listed["ed-system"]["roles"] == []
    assert listed["ig-office"]["unbound"] is False  # makes no exchanges: nothing to bind
    code, out = run("clients", "list")
    assert code == 0
    assert "UNBOUND" in out
    assert "unbound" in out
    assert "ed-system" in out.split("unbound (", 1)[1]

    sg = ("--agreement", "ISA-SAFEGUARDING-CHILDREN")
    code, out = run("clients", "bind", "ed-system", "--role", "safeguarding-nurse", *sg)
    assert code == 0, out
    assert "bound ed-system to role safeguarding-nurse for agreement ISA-SAFEGUARDING" in flat(out)
    assert run("clients", "bind", "ed-system", "--role", "ed-doctor")[0] == 0
    roles = json.loads(run("clients", "roles", "ed-system", "--json")[1])
    assert roles == [
        {
            "role": "safeguarding-nurse",
            "agreement_id": "ISA-SAFEGUARDING-CHILDREN",
            "flow_id": None,
        },
        {"role": "ed-doctor", "agreement_id": None, "flow_id": None},
    ]
    listed = {c["id"]: c for c in json.loads(run("clients", "list", "--json")[1])}
    assert listed["ed-system"]["unbound"] is False
    assert "UNBOUND" not in run("clients", "list")[1]

    # Bound already: a conflict. Unbinding needs the binding exactly as made.
    code, out = run("clients", "bind", "ed-system", "--role", "safeguarding-nurse", *sg)
    assert code == 1
    assert "already bound" in out
    code, out = run("clients", "unbind", "ed-system", "--role", "safeguarding-nurse")
    assert code == 2
    assert "not bound to role safeguarding-nurse" in flat(out)
    assert run("clients", "unbind", "ed-system", "--role", "safeguarding-nurse", *sg)[0] == 0
    code, out = run("clients", "unbind", "ed-system", "--role", "ed-doctor")
    assert code == 0
    assert "acts for none" in flat(out)
    assert "acts for none" in flat(run("clients", "roles", "ed-system")[1])

    changes = [(a, t, d) for a, t, d in _actions(env) if a.startswith("client.") and "bind" in a]
    assert changes == [
        (
            "client.bind",
            "ed-system",
            {"role": "safeguarding-nurse", "agreement": "ISA-SAFEGUARDING-CHILDREN", "flow": None},
        ),
        ("client.bind", "ed-system", {"role": "ed-doctor", "agreement": None, "flow": None}),
        (
            "client.unbind",
            "ed-system",
            {"role": "safeguarding-nurse", "agreement": "ISA-SAFEGUARDING-CHILDREN", "flow": None},
        ),
        ("client.unbind", "ed-system", {"role": "ed-doctor", "agreement": None, "flow": None}),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ("ig-office", "--role", "gp"),
            "only systems that make exchanges",
            id="no-exchange-scope",
        ),
        pytest.param(("nobody", "--role", "gp"), "no client", id="unknown-client"),
        pytest.param(("ed-system", "--role", "a b"), "role", id="bad-role"),
        pytest.param(
            ("ed-system", "--role", "gp", "--flow", "f1"), "within an agreement", id="flow-alone"
        ),
        pytest.param(
            ("ed-system", "--role", "gp", "--agreement", "ISA;X"),
            "agreement_id",
            id="bad-agreement",
        ),
    ],
)
def test_a_bad_binding_exits_2_and_changes_nothing(
    tmp_path: Path, env: dict[str, str], args: tuple[str, ...], message: str
) -> None:
    _two_systems(tmp_path)
    before = _actions(env)
    code, out = run("clients", "bind", *args)
    assert code == 2, out
    assert message in flat(out)
    assert _actions(env) == before
