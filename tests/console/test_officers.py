"""Officers proven at the console: password rules, the identity-provider link set by the party's
administrator (logged), suspension, and sessions limited, listed and ended by the officer (a
console page) and by the administrator (the CLI)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from broker.cli.main import app
from broker.console.accounts import MAX_SESSIONS, Accounts, Role
from broker.console.enrolment import Enrolment
from broker.console.errors import SessionRequired, SignInRefused
from broker.console.passwords import password_problem
from broker.core.errors import Conflict, InvalidInput, NotFound
from broker.db.engine import build_engine
from broker.db.migrate import upgrade
from broker.db.tables import admin_events
from demo.console import DEMO_OFFICERS
from tests.console.helpers import console_broker, csrf_of, sign_in
from tests.support import LiveBroker

FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
ISSUER = "https://login.example-council.gov.uk"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    e = build_engine(f"sqlite:///{tmp_path / 'a.db'}")
    upgrade(e)
    yield e
    e.dispose()


@pytest.fixture
def accounts(engine: Engine) -> Accounts:
    a = Accounts(engine, hasher=FAST)
    a.add_user("jo.dpo", "calderbridge-city-council", Role.OVERSIGHT, "kettle-orchard-violin")
    a.add_user("ig.lead", "R9Z", Role.GOVERNANCE, "harbour-lantern-maple")
    return a


@pytest.mark.parametrize(
    "password",
    [
        "short-one",
        "password1234",
        "Password123!",
        "!!qwertyuiop99",
        "welcome2026!!",
        "aaaaaaaaaaaaaa",
        "abcdefghijklmn",
        "zyxwvutsrqponm",
        "my-jo.dpo-password",
        "Calderbridge-City-Council-1",
        "calderbridge city council",
    ],
)
def test_weak_passwords_are_refused(accounts: Accounts, password: str) -> None:
    with pytest.raises(InvalidInput):
        accounts.add_user(
            "new.officer",
            "calderbridge-city-council",
            Role.AUDITOR,
            password.replace("jo.dpo", "new.officer"),
            context=("Calderbridge City Council",),
        )


def test_the_username_is_never_in_the_password() -> None:
    assert password_problem("x-ig.lead-wonderful", username="ig.lead")
    assert password_problem("IGLEAD-wonderful-9", username="ig.lead")
    assert not password_problem("kettle-orchard-violin", username="ig.lead")


def test_demo_passwords_follow_the_rules() -> None:
    for officer in DEMO_OFFICERS:
        assert not password_problem(
            officer.password, username=officer.username, context=(officer.party_id,)
        ), officer.username


def test_sessions_per_account_are_limited_the_oldest_ending(accounts: Accounts) -> None:
    account = accounts.find("jo.dpo")
    assert account is not None
    opened = [accounts.open_session(account)[0] for _ in range(MAX_SESSIONS + 2)]
    assert len(accounts.list_sessions("jo.dpo")) == MAX_SESSIONS
    for gone in opened[:2]:
        with pytest.raises(SessionRequired):
            accounts.session(gone)
    for kept in opened[2:]:
        assert accounts.session(kept).account.username == "jo.dpo"
    other = accounts.find("ig.lead")
    assert other is not None
    accounts.open_session(other)
    assert len(accounts.list_sessions("jo.dpo")) == MAX_SESSIONS


def _events(engine: Engine) -> list[tuple[str, str, dict[str, object]]]:
    with engine.connect() as conn:
        rows = conn.execute(select(admin_events).order_by(admin_events.c.id)).all()
    return [(r.action, r.target, r.details) for r in rows]


def test_linking_is_by_the_accounts_party_and_logged(accounts: Accounts, engine: Engine) -> None:
    enrolment = Enrolment(engine)
    with pytest.raises(NotFound):  # an administrator of another party cannot link it
        enrolment.link("ig.lead", "calderbridge-city-council", ISSUER, "sub-1", "cli:x")
    with pytest.raises(NotFound):
        enrolment.link("nobody", "R9Z", ISSUER, "sub-1", "cli:x")
    with pytest.raises(InvalidInput):
        enrolment.link("ig.lead", "R9Z", "not-a-url", "sub-1", "cli:x")
    with pytest.raises(InvalidInput):
        enrolment.link("ig.lead", "R9Z", ISSUER, "", "cli:x")
    enrolment.link("ig.lead", "R9Z", ISSUER + "/", "sub-1", "cli:admin")
    assert accounts.find_linked(ISSUER, "sub-1").username == "ig.lead"
    with pytest.raises(Conflict):  # one identity, one account
        enrolment.link("jo.dpo", "calderbridge-city-council", ISSUER, "sub-1", "cli:x")
    with pytest.raises(SignInRefused):  # matched on issuer and subject, both
        accounts.find_linked("https://other.example", "sub-1")
    assert _events(engine) == [
        (
            "console.link-oidc",
            "ig.lead",
            {"oidc_issuer": ISSUER, "oidc_subject": "sub-1"} | {"party": "R9Z"},
        )
    ]
    enrolment.unlink("ig.lead", "R9Z", "cli:admin")
    with pytest.raises(SignInRefused):
        accounts.find_linked(ISSUER, "sub-1")


def test_suspension_ends_sessions_and_refuses_sign_in(accounts: Accounts, engine: Engine) -> None:
    account = accounts.find("ig.lead")
    assert account is not None
    session_id, _ = accounts.open_session(account)
    enrolment = Enrolment(engine)
    enrolment.link("ig.lead", "R9Z", ISSUER, "sub-1", "cli:admin")
    enrolment.set_active("ig.lead", "R9Z", False, "cli:admin")
    with pytest.raises(SessionRequired):
        accounts.session(session_id)
    with pytest.raises(SignInRefused):
        accounts.authenticate("ig.lead", "harbour-lantern-maple")
    with pytest.raises(SignInRefused):
        accounts.find_linked(ISSUER, "sub-1")
    enrolment.set_active("ig.lead", "R9Z", True, "cli:admin")
    assert accounts.authenticate("ig.lead", "harbour-lantern-maple").username == "ig.lead"
    actions = [e[0] for e in _events(engine)]
    assert actions == ["console.link-oidc", "console.suspend-user", "console.reinstate-user"]


def test_the_administrator_ends_one_or_all_sessions(accounts: Accounts, engine: Engine) -> None:
    account = accounts.find("ig.lead")
    assert account is not None
    first, _ = accounts.open_session(account)
    second, _ = accounts.open_session(account)
    enrolment = Enrolment(engine)
    with pytest.raises(InvalidInput):
        enrolment.end_sessions("ig.lead", "R9Z", "cli:admin", "")
    with pytest.raises(NotFound):
        enrolment.end_sessions("ig.lead", "calderbridge-city-council", "cli:admin")
    assert enrolment.end_sessions("ig.lead", "R9Z", "cli:admin", Accounts.handle_of(first)) == 1
    with pytest.raises(SessionRequired):
        accounts.session(first)
    assert accounts.session(second).account.username == "ig.lead"
    assert enrolment.end_sessions("ig.lead", "R9Z", "cli:admin") == 1
    assert accounts.list_sessions("ig.lead") == []


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveBroker]:
    with console_broker(tmp_path_factory.mktemp("officers")) as (broker, _):
        yield broker


def test_the_officer_lists_and_ends_their_sessions(env: LiveBroker) -> None:
    laptop = sign_in(env.url, "internal-auditor")
    phone = sign_in(env.url, "internal-auditor")
    try:
        page = laptop.get("/console/sessions")
        assert page.status_code == 200
        assert "(this browser)" in page.text
        phone_handle = Accounts.handle_of(phone.cookies["broker_console"])
        assert phone_handle in page.text
        csrf = csrf_of(page.text)
        for bad in ("", "zz", "0" * 16, "x" * 64):
            refused = laptop.post("/console/sessions/end", data={"csrf": csrf, "handle": bad})
            assert refused.status_code == 404
        ended = laptop.post("/console/sessions/end", data={"csrf": csrf, "handle": phone_handle})
        assert ended.status_code == 303
        assert phone.get("/console/").status_code == 303  # sent to sign in
        assert laptop.get("/console/").status_code == 200
        own = Accounts.handle_of(laptop.cookies["broker_console"])
        signed_out = laptop.post("/console/sessions/end", data={"csrf": csrf, "handle": own})
        assert signed_out.headers["location"] == "/console/login"
        assert laptop.get("/console/").status_code == 303
    finally:
        laptop.close()
        phone.close()


def test_the_cli_links_suspends_and_ends_sessions(
    env: LiveBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BROKER_DATABASE_URL", env.settings.database_url)
    officer = ["--username", "r9z-caldicott", "--party", "R9Z"]
    runner = CliRunner()
    linked = runner.invoke(
        app, ["console", "link-oidc", *officer, "--issuer", ISSUER, "--subject", "s-9"]
    )
    assert linked.exit_code == 0, linked.output
    other_party = ["--username", "r9z-caldicott", "--party", "calderbridge-city-council"]
    refused = runner.invoke(
        app, ["console", "link-oidc", *other_party, "--issuer", ISSUER, "--subject", "s-9"]
    )
    assert refused.exit_code == 2
    client = sign_in(env.url, "r9z-caldicott")
    try:
        listed = runner.invoke(app, ["console", "list-sessions", *officer, "--json"])
        assert listed.exit_code == 0, listed.output
        handles = [s["handle"] for s in json.loads(listed.output)]
        assert Accounts.handle_of(client.cookies["broker_console"]) in handles
        ended = runner.invoke(app, ["console", "end-sessions", *officer])
        assert ended.exit_code == 0, ended.output
        assert client.get("/console/").status_code == 303
    finally:
        client.close()
    for command in ("suspend-user", "reinstate-user", "unlink-oidc"):
        done = runner.invoke(app, ["console", command, *officer])
        assert done.exit_code == 0, done.output
    weak = runner.invoke(
        app,
        [
            "console",
            "add-user",
            "--username",
            "r9z-iao",
            "--party",
            "R9Z",
            "--role",
            "auditor",
            "--password-stdin",
        ],
        input="password1234\n",
    )
    assert weak.exit_code == 2
    actions = [e[0] for e in _events(env.services.engine)]
    for action in ("link-oidc", "end-sessions", "suspend-user", "reinstate-user", "unlink-oidc"):
        assert f"console.{action}" in actions
    with httpx.Client(base_url=env.url) as anyone:
        assert anyone.get("/console/sessions").status_code == 303
