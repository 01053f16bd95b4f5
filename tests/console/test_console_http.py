"""The console over HTTP: who may open what, party scoping, CSRF, reviews, logging of reads."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from broker.audit.tables import audit_entries
from broker.console.accounts import Accounts, Role
from broker.core.errors import ConfigurationError
from broker.db.engine import build_engine
from broker.db.migrate import upgrade
from broker.settings import Settings
from demo.console import create_demo_officers
from tests.console.helpers import CHILD_NHS, Seeded, console_broker, csrf_of, sign_in
from tests.support import LiveBroker

GET_ROUTES = [
    "/console/",
    "/console/exchanges",
    "/console/exchanges/{bg}",
    "/console/agreements",
    "/console/agreements/ISA-SAFEGUARDING-CHILDREN",
    "/console/break-glass",
    "/console/integrity",
    "/console/integrity/status",
    "/console/reports",
    "/console/reports.csv",
    "/console/access-report",
]
POST_ROUTES = [
    "/console/logout",
    "/console/exchanges/search",
    "/console/break-glass/{bg}",
    "/console/integrity/verify",
    "/console/access-report",
]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveBroker, Seeded]]:
    with console_broker(tmp_path_factory.mktemp("console")) as pair:
        yield pair


@pytest.fixture(scope="module")
def dpo(env: tuple[LiveBroker, Seeded]) -> Iterator[httpx.Client]:
    client = sign_in(env[0].url, "council-dpo")
    yield client
    client.close()


@pytest.fixture(scope="module")
def caldicott(env: tuple[LiveBroker, Seeded]) -> Iterator[httpx.Client]:
    client = sign_in(env[0].url, "r9z-caldicott")
    yield client
    client.close()


def _path(route: str, seeded: Seeded) -> str:
    return route.format(bg=seeded.hospital_bg)


@pytest.mark.parametrize("route", GET_ROUTES, ids=GET_ROUTES)
def test_unauthenticated_get_is_sent_to_sign_in(env: tuple[LiveBroker, Seeded], route: str) -> None:
    broker, seeded = env
    response = broker.http.get(_path(route, seeded))
    assert response.status_code == 303
    assert response.headers["location"].startswith("/console/login?next=")


@pytest.mark.parametrize("route", POST_ROUTES, ids=POST_ROUTES)
def test_unauthenticated_post_is_refused(env: tuple[LiveBroker, Seeded], route: str) -> None:
    broker, seeded = env
    response = broker.http.post(_path(route, seeded), data={"outcome": "appropriate", "nhs": "1"})
    assert response.status_code == 401


@pytest.mark.parametrize("route", GET_ROUTES, ids=GET_ROUTES)
def test_a_forged_session_cookie_is_refused(env: tuple[LiveBroker, Seeded], route: str) -> None:
    broker, seeded = env
    response = broker.http.get(
        _path(route, seeded), headers={"Cookie": "broker_console=not-a-session"}
    )
    assert response.status_code == 303


WRONG_ROLE = [
    ("council-isa-admin", "GET", "/console/exchanges"),
    ("council-isa-admin", "GET", "/console/exchanges/{bg}"),
    ("council-isa-admin", "GET", "/console/break-glass"),
    ("council-isa-admin", "GET", "/console/access-report"),
    ("council-isa-admin", "POST", "/console/exchanges/search"),
    ("council-isa-admin", "POST", "/console/break-glass/{bg}"),
    ("council-isa-admin", "POST", "/console/integrity/verify"),
    ("council-isa-admin", "POST", "/console/access-report"),
    ("internal-auditor", "POST", "/console/break-glass/{bg}"),
    ("internal-auditor", "GET", "/console/access-report"),
    ("internal-auditor", "POST", "/console/access-report"),
    ("r9z-caldicott", "POST", "/console/integrity/verify"),
]


@pytest.mark.parametrize(
    ("username", "method", "route"),
    WRONG_ROLE,
    ids=[f"{u}-{m}-{r}" for u, m, r in WRONG_ROLE],
)
def test_wrong_role_is_refused(
    env: tuple[LiveBroker, Seeded], username: str, method: str, route: str
) -> None:
    broker, seeded = env
    client = sign_in(broker.url, username)
    try:
        csrf = csrf_of(client.get("/console/").text)
        if method == "GET":
            response = client.get(_path(route, seeded))
        else:
            response = client.post(
                _path(route, seeded),
                data={"csrf": csrf, "outcome": "appropriate", "nhs": CHILD_NHS},
            )
    finally:
        client.close()
    assert response.status_code == 403
    assert "may not use" in response.text


def test_a_party_officer_never_sees_another_partys_exchanges(
    env: tuple[LiveBroker, Seeded], caldicott: httpx.Client, dpo: httpx.Client
) -> None:
    _, seeded = env
    mine = caldicott.get("/console/exchanges")
    assert seeded.hospital_bg in mine.text
    assert seeded.council_only not in mine.text
    assert caldicott.get(f"/console/exchanges/{seeded.council_only}").status_code == 404
    filtered = caldicott.get("/console/exchanges", params={"agreement": "ISA-PROOF-REUSE"})
    assert seeded.council_only not in filtered.text
    assert caldicott.get("/console/agreements/ISA-PROOF-REUSE").status_code == 404
    assert "ISA-PROOF-REUSE" not in caldicott.get("/console/agreements").text
    assert seeded.council_only in dpo.get("/console/exchanges").text


def test_csrf_is_refused(env: tuple[LiveBroker, Seeded], dpo: httpx.Client) -> None:
    broker, seeded = env
    for token in ("", "forged"):
        response = dpo.post(
            f"/console/break-glass/{seeded.hospital_bg}",
            data={"csrf": token, "outcome": "appropriate"},
        )
        assert response.status_code == 403
    # The sign-in form without its double-submit cookie.
    with httpx.Client(base_url=broker.url) as fresh:
        response = fresh.post(
            "/console/login",
            data={"username": "council-dpo", "password": "demo-oversight-lantern", "csrf": "x"},
        )
    assert response.status_code == 403


def test_session_cookie_flags(env: tuple[LiveBroker, Seeded]) -> None:
    broker, _ = env
    with httpx.Client(base_url=broker.url) as client:
        page = client.get("/console/login")
        response = client.post(
            "/console/login",
            data={
                "username": "council-dpo",
                "password": "demo-oversight-lantern",
                "csrf": csrf_of(page.text),
            },
        )
    cookie = next(
        v for k, v in response.headers.multi_items() if k == "set-cookie" and "broker_console=" in v
    )
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
    assert "Path=/console" in cookie
    assert "Secure" not in cookie  # http public URL in tests; https turns it on
    assert "script-src 'self'" in response.headers["content-security-policy"]


def test_wrong_passwords_lock_the_account(env: tuple[LiveBroker, Seeded]) -> None:
    broker, _ = env
    accounts = Accounts(broker.services.engine)
    accounts.add_user("locked-out", "R9Z", Role.GOVERNANCE, "right-password-123")
    with httpx.Client(base_url=broker.url) as client:
        for _ in range(5):
            page = client.get("/console/login")
            bad = client.post(
                "/console/login",
                data={"username": "locked-out", "password": "wrong", "csrf": csrf_of(page.text)},
            )
            assert bad.status_code == 401
        page = client.get("/console/login")
        right = client.post(
            "/console/login",
            data={
                "username": "locked-out",
                "password": "right-password-123",
                "csrf": csrf_of(page.text),
            },
        )
    assert right.status_code == 401


@pytest.mark.parametrize(
    ("workers", "attempts"), [(1, 3), (2, 6)], ids=["one-process", "one-of-two-processes"]
)
def test_one_address_trying_many_names_is_slowed_down(
    tmp_path: Path, workers: int, attempts: int
) -> None:
    # With several server processes each allows its share of the attempts.
    with console_broker(
        tmp_path, console_sign_in_attempts_per_window=attempts, workers=workers
    ) as (broker, _):
        statuses = []
        with httpx.Client(base_url=broker.url) as client:
            for i in range(4):
                page = client.get("/console/login")
                response = client.post(
                    "/console/login",
                    data={"username": f"guess-{i}", "password": "x", "csrf": csrf_of(page.text)},
                )
                statuses.append(response.status_code)
    assert statuses == [401, 401, 401, 429]


def test_subject_search_pseudonymises_the_nhs_number(
    env: tuple[LiveBroker, Seeded], caldicott: httpx.Client
) -> None:
    _, seeded = env
    csrf = csrf_of(caldicott.get("/console/exchanges").text)
    response = caldicott.post(
        "/console/exchanges/search", data={"csrf": csrf, "nhs": "999 000 0018"}
    )
    assert response.status_code == 303
    assert CHILD_NHS not in response.headers["location"]
    page = caldicott.get(response.headers["location"])
    assert seeded.hospital_bg in page.text
    assert seeded.council_only not in page.text


def test_exchange_page_shows_its_proof_verified(
    env: tuple[LiveBroker, Seeded], dpo: httpx.Client
) -> None:
    _, seeded = env
    page = dpo.get(f"/console/exchanges/{seeded.hospital_allow}")
    assert page.status_code == 200
    assert "<strong>Verified</strong> on the server" in page.text
    assert "valid (Ed25519" in page.text


def test_agreement_page_says_what_each_flow_needs_of_the_person(
    env: tuple[LiveBroker, Seeded], dpo: httpx.Client
) -> None:
    page = dpo.get("/console/agreements/ISA-SAFEGUARDING-CHILDREN")
    assert page.status_code == 200
    assert "Person behind each request" in page.text
    assert "a verified user" in page.text
    school = dpo.get("/console/agreements/ISA-SCHOOL-ADMISSIONS")
    assert "none: the system asks for itself" in school.text


def test_exchange_page_marks_a_user_only_asserted_by_the_system(
    env: tuple[LiveBroker, Seeded], dpo: httpx.Client
) -> None:
    _, seeded = env
    asserted = dpo.get(f"/console/exchanges/{seeded.hospital_bg}")
    assert asserted.status_code == 200
    assert "asserted by the system, not verified" in asserted.text
    plain = dpo.get(f"/console/exchanges/{seeded.hospital_allow}")
    assert "asserted by the system" not in plain.text


def test_break_glass_review_is_recorded_and_logged(
    env: tuple[LiveBroker, Seeded], caldicott: httpx.Client
) -> None:
    broker, seeded = env
    queue = caldicott.get("/console/break-glass")
    assert seeded.hospital_bg in queue.text
    csrf = csrf_of(queue.text)
    path = f"/console/break-glass/{seeded.hospital_bg}"
    missing_note = caldicott.post(path, data={"csrf": csrf, "outcome": "referred"})
    assert missing_note.status_code == 422
    done = caldicott.post(path, data={"csrf": csrf, "outcome": "appropriate", "note": "ok"})
    assert done.status_code == 303
    assert seeded.hospital_bg not in caldicott.get("/console/break-glass").text
    reviewed = caldicott.get("/console/break-glass", params={"status": "reviewed"})
    assert seeded.hospital_bg in reviewed.text
    again = caldicott.post(path, data={"csrf": csrf, "outcome": "appropriate", "note": "x"})
    assert again.status_code == 409
    leaves = _admin_leaves(broker)
    assert any(b"console-break-glass-review" in leaf for leaf in leaves)


def _admin_leaves(broker: LiveBroker) -> list[bytes]:
    c = audit_entries.c
    with broker.services.engine.connect() as conn:
        rows = conn.execute(select(c.leaf).where(c.kind.in_(["admin", "audit-read"]))).all()
    return [bytes(r[0]) for r in rows]


def test_every_console_view_is_logged(env: tuple[LiveBroker, Seeded], dpo: httpx.Client) -> None:
    broker, seeded = env
    before = len(_admin_leaves(broker))
    dpo.get(f"/console/exchanges/{seeded.hospital_allow}")
    dpo.get("/console/reports.csv")
    leaves = _admin_leaves(broker)
    assert len(leaves) == before + 2
    assert b'"client_id":"console:council-dpo"' in leaves[-1]
    assert b"console:report.csv" in leaves[-1]
    assert any(b"console-sign-in" in leaf for leaf in leaves)


def test_access_report_lists_the_subjects_exchanges(
    env: tuple[LiveBroker, Seeded], dpo: httpx.Client
) -> None:
    csrf = csrf_of(dpo.get("/console/access-report").text)
    page = dpo.post("/console/access-report", data={"csrf": csrf, "nhs": CHILD_NHS})
    assert page.status_code == 200
    assert "Calderbridge Hospitals NHS Foundation Trust" in page.text
    assert "child_protection_plan.status" in page.text
    assert "DPA 2018 Sch 1 para 18" in page.text
    bad = dpo.post("/console/access-report", data={"csrf": csrf, "nhs": "9990000019"})
    assert bad.status_code == 422


def test_reports_csv_has_monthly_figures(env: tuple[LiveBroker, Seeded], dpo: httpx.Client) -> None:
    response = dpo.get("/console/reports.csv", params={"agreement": "ISA-SAFEGUARDING-CHILDREN"})
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.text.strip().splitlines()
    assert lines[0] == "agreement,month,exchanges,allowed,denied,other,break_glass"
    assert len(lines) == 13  # header and 12 months
    assert lines[-1].split(",")[2:] == ["3", "2", "1", "0", "1"]


def test_integrity_verification_runs_in_the_background(
    env: tuple[LiveBroker, Seeded], dpo: httpx.Client
) -> None:
    csrf = csrf_of(dpo.get("/console/integrity").text)
    started = dpo.post(
        "/console/integrity/verify",
        headers={"X-CSRF-Token": csrf, "Accept": "application/json"},
    )
    assert started.status_code == 202
    status: dict[str, object] = {}
    for _ in range(400):  # polled as the page's script does
        status = dpo.get("/console/integrity/status").json()
        if not status["running"]:
            break
        time.sleep(0.05)
    assert status["ok"] is True
    assert "intact" in dpo.get("/console/integrity").text


def test_cli_add_user_reads_the_password_from_stdin(
    env: tuple[LiveBroker, Seeded], monkeypatch: pytest.MonkeyPatch
) -> None:
    from broker.cli.main import app

    broker, _ = env
    monkeypatch.setenv("BROKER_DATABASE_URL", broker.settings.database_url)
    args = ["console", "add-user", "--username", "new-iao", "--party", "R9Z"]
    ok = CliRunner().invoke(
        app, [*args, "--role", "governance", "--password-stdin"], input="a-long-password-1\n"
    )
    assert ok.exit_code == 0, ok.output
    again = CliRunner().invoke(
        app, [*args, "--role", "governance", "--password-stdin"], input="a-long-password-1\n"
    )
    assert again.exit_code == 2
    short = CliRunner().invoke(
        app,
        [
            "console",
            "add-user",
            "--username",
            "x2",
            "--party",
            "R9Z",
            "--role",
            "auditor",
            "--password-stdin",
        ],
        input="short\n",
    )
    assert short.exit_code == 2
    assert Accounts(broker.services.engine).find("new-iao") is not None


def test_demo_officers_are_refused_outside_demo(tmp_path: Path) -> None:
    engine = build_engine(f"sqlite:///{tmp_path / 'd.db'}")
    upgrade(engine)
    with pytest.raises(ConfigurationError, match="refused outside --demo"):
        create_demo_officers(Settings(demo=False), engine)
    engine.dispose()


def test_the_sign_in_throttle_says_when_to_try_again(tmp_path: Path) -> None:
    with (
        console_broker(tmp_path, console_sign_in_attempts_per_window=1) as (broker, _),
        httpx.Client(base_url=broker.url) as client,
    ):
        responses = []
        for i in range(2):
            page = client.get("/console/login")
            responses.append(
                client.post(
                    "/console/login",
                    data={"username": f"guess-{i}", "password": "x", "csrf": csrf_of(page.text)},
                )
            )
    assert [r.status_code for r in responses] == [401, 429]
    value = responses[1].headers["retry-after"]
    assert value.isdigit(), value
    assert 1 <= int(value) <= 300, value
    assert "retry-after" not in responses[0].headers
