"""Accounts, sessions and throttling (database, no HTTP); roles; charts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine, select

from broker.agreements.loader import VerifiedAgreement
from broker.console.access import GRANTS, Permission, allowed, audit_scope, visible_agreements
from broker.console.accounts import (
    FREE_FAILURES,
    LOCK_BASE_SECONDS,
    Account,
    Accounts,
    Role,
    csrf_matches,
)
from broker.console.charts import Series, stacked_bars
from broker.console.errors import SessionRequired, SignInRefused
from broker.console.tables import console_sessions, console_users
from broker.core.errors import Conflict, InvalidInput
from broker.db.engine import build_engine
from broker.db.migrate import upgrade

# Cheap hashing keeps the tests quick; production uses argon2-cffi's defaults.
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


class FakeClock:
    def __init__(self) -> None:
        self.ms = 1_800_000_000_000

    def __call__(self) -> int:
        return self.ms


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    e = build_engine(f"sqlite:///{tmp_path / 'a.db'}")
    upgrade(e)
    yield e
    e.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def accounts(engine: Engine, clock: FakeClock) -> Accounts:
    a = Accounts(engine, idle_seconds=600, max_seconds=3600, clock_ms=clock, hasher=FAST)
    a.add_user("dpo", "calderbridge-city-council", Role.OVERSIGHT, "correct horse battery")
    return a


def test_password_is_stored_as_an_argon2_hash(accounts: Accounts, engine: Engine) -> None:
    with engine.connect() as conn:
        stored = conn.execute(select(console_users.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$")
    assert "correct horse" not in stored


@pytest.mark.parametrize(
    ("username", "password", "error"),
    [
        ("dpo", "another long password", Conflict),
        ("Bad Name", "another long password", InvalidInput),
        ("new-user", "short", InvalidInput),
    ],
    ids=["exists", "bad-name", "weak-password"],
)
def test_add_user_refuses(
    accounts: Accounts, username: str, password: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        accounts.add_user(username, "R9Z", Role.GOVERNANCE, password)


@pytest.mark.parametrize(
    ("username", "password"),
    [("dpo", "wrong password!!"), ("nobody", "correct horse battery"), ("dpo", "")],
    ids=["wrong-password", "unknown-user", "empty-password"],
)
def test_wrong_credentials_are_refused_alike(
    accounts: Accounts, username: str, password: str
) -> None:
    with pytest.raises(SignInRefused, match="username or password is not right"):
        accounts.authenticate(username, password)


def test_lock_after_failures_then_unlock(accounts: Accounts, clock: FakeClock) -> None:
    for _ in range(FREE_FAILURES):
        with pytest.raises(SignInRefused):
            accounts.authenticate("dpo", "wrong password!!")
    with pytest.raises(SignInRefused):
        accounts.authenticate("dpo", "correct horse battery")  # locked: right password refused
    clock.ms += LOCK_BASE_SECONDS * 1000 + 1
    assert accounts.authenticate("dpo", "correct horse battery").username == "dpo"
    # The counter was reset by the good sign-in: one more failure does not lock again.
    with pytest.raises(SignInRefused):
        accounts.authenticate("dpo", "wrong password!!")
    assert accounts.authenticate("dpo", "correct horse battery").role is Role.OVERSIGHT


def test_sessions_end_when_idle_or_too_old(
    accounts: Accounts, clock: FakeClock, engine: Engine
) -> None:
    account = accounts.authenticate("dpo", "correct horse battery")
    cookie, session = accounts.open_session(account)
    with engine.connect() as conn:
        stored = conn.execute(select(console_sessions.c.id_hash)).scalar_one()
    assert stored != cookie  # only the hash is kept
    assert accounts.session(cookie).csrf == session.csrf
    clock.ms += 601_000
    with pytest.raises(SessionRequired, match="ended"):
        accounts.session(cookie)
    with pytest.raises(SessionRequired):
        accounts.session(cookie)  # closed for good
    cookie, second = accounts.open_session(account)
    while clock.ms + 500_000 - second.created_ms <= 3_600_000:
        clock.ms += 500_000  # busy: every request inside the idle window
        accounts.session(cookie)
    clock.ms += 500_000
    with pytest.raises(SessionRequired):
        accounts.session(cookie)  # past the absolute limit though never idle


@pytest.mark.parametrize("cookie", [None, "", "made-up"], ids=["none", "empty", "unknown"])
def test_no_session_without_a_real_cookie(accounts: Accounts, cookie: str | None) -> None:
    with pytest.raises(SessionRequired):
        accounts.session(cookie)


def test_csrf_comparison() -> None:
    assert csrf_matches("abc", "abc")
    assert not csrf_matches("abc", "abd")
    assert not csrf_matches("abc", None)
    assert not csrf_matches("abc", "")


def test_roles_follow_the_api_scopes() -> None:
    # Oversight may do everything but suspend a party's user: that is the party's own act.
    assert GRANTS[Role.OVERSIGHT] == frozenset(Permission) - {Permission.SUSPEND_USERS}
    assert Permission.SUSPEND_USERS in GRANTS[Role.GOVERNANCE]
    assert Permission.SUSPEND_USERS not in GRANTS[Role.AUDITOR]
    assert Permission.EXCHANGES not in GRANTS[Role.AGREEMENT_ADMIN]
    assert Permission.REVIEW not in GRANTS[Role.AUDITOR]
    assert Permission.VERIFY not in GRANTS[Role.GOVERNANCE]
    officer = Account("x", "R9Z", Role.GOVERNANCE, None, True)
    assert allowed(officer, Permission.REVIEW)
    none: list[VerifiedAgreement] = []
    assert visible_agreements(officer, none) == []
    scope = audit_scope(officer, none)
    assert scope is not None
    assert (scope.party_id, scope.provided_datasets) == ("R9Z", ())
    assert audit_scope(Account("y", "R9Z", Role.AUDITOR, None, True), none) is None


def test_chart_escapes_labels_and_describes_every_value() -> None:
    svg = str(
        stacked_bars(
            "Title <b>", ["Jan", "<script>"], [Series("Allowed", [3, 0]), Series("Denied", [1, 2])]
        )
    )
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert "Jan: Allowed 3, Denied 1" in svg
    assert 'role="img"' in svg
