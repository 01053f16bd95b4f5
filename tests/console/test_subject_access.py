"""Subject access requests at the console: any identifier the broker knows (property searches
labelled household-level), safeguarding holds marked, the received and one-month due dates, open
and overdue requests, and the export (printable page, JSON, CSV) that withholds held exchanges,
redacts other organisations' staff data and neutralises spreadsheet formulas. Every search and
export is in the log under the subject's pseudonym only."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select

from broker.audit.entry import AgreementRef
from broker.audit.tables import audit_entries
from broker.console import subject_access as sar
from broker.console.accounts import Account, Role
from broker.core.errors import NotFound
from broker.core.subject_access import csv_cell, due_date
from broker.db.migrate import upgrade
from demo.parties import COUNCIL, HOSPITAL
from tests.console.helpers import (
    CHILD_NHS,
    Seeded,
    console_broker,
    csrf_of,
    safeguarding_entry,
    sign_in,
)
from tests.support import LiveBroker

UPRN = "100023336956"
PERSON_ID = "P0004521"
FORMULA_CASE = '=HYPERLINK("http://example.invalid","x")'
COUNCIL_CASE = "ASC-2026-0417"
COUNCIL_USER = "council-social-worker-2"


# --- pure ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("received", "due"),
    [
        (dt.date(2026, 9, 3), dt.date(2026, 10, 3)),
        (dt.date(2026, 1, 31), dt.date(2026, 2, 28)),
        (dt.date(2028, 1, 31), dt.date(2028, 2, 29)),
        (dt.date(2026, 12, 15), dt.date(2027, 1, 15)),
        (dt.date(2026, 3, 31), dt.date(2026, 4, 30)),
    ],
)
def test_one_calendar_month(received: dt.date, due: dt.date) -> None:
    assert due_date(received) == due


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_csv_cells_never_start_a_formula(start: str) -> None:
    assert csv_cell(start + "1+1") == "'" + start + "1+1"
    assert csv_cell("MASH 9") == "MASH 9"
    assert csv_cell(None) == ""


# --- the request table, on SQLite and PostgreSQL ---------------------------------------------


def test_requests_are_kept_per_party_with_due_dates(engine: Engine) -> None:
    upgrade(engine)
    hospital = Account("r9z-caldicott", HOSPITAL, Role.GOVERNANCE, None, True)
    council = Account("council-gov", COUNCIL, Role.GOVERNANCE, None, True)
    dpo = Account("council-dpo", COUNCIL, Role.OVERSIGHT, None, True)
    late = sar.open_request(
        engine,
        hospital,
        subject_type="nhs_number",
        pseudonyms=["a" * 64],
        received_on=dt.date(2026, 1, 31),
        now_ms=1,
    )
    soon = sar.open_request(
        engine,
        hospital,
        subject_type="uprn",
        pseudonyms=["b" * 64, "c" * 64],
        received_on=dt.date(2026, 11, 20),
        now_ms=2,
    )
    assert late.due_on == dt.date(2026, 2, 28)
    assert late.overdue(dt.date(2026, 3, 1))
    assert not late.overdue(dt.date(2026, 2, 28))
    assert [r.id for r in sar.open_requests(engine, hospital)] == [late.id, soon.id]
    assert sar.get_request(engine, hospital, soon.id).pseudonyms == ("b" * 64, "c" * 64)
    assert sar.get_request(engine, hospital, soon.id).household
    # Another party's officer cannot see, read or close it; oversight sees every party's.
    assert sar.open_requests(engine, council) == []
    with pytest.raises(NotFound):
        sar.get_request(engine, council, late.id)
    with pytest.raises(NotFound):
        sar.close_request(engine, council, late.id, 3)
    assert {r.id for r in sar.open_requests(engine, dpo)} == {late.id, soon.id}
    sar.close_request(engine, hospital, late.id, 4)
    assert [r.id for r in sar.open_requests(engine, hospital)] == [soon.id]
    assert sar.get_request(engine, hospital, late.id).closed
    with engine.connect() as conn:
        stored = conn.execute(select(sar.console_subject_access.c.subject_pseudonyms)).all()
    assert all(json.loads(r[0]) for r in stored)


# --- over HTTP -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveBroker, Seeded]]:
    with console_broker(tmp_path_factory.mktemp("sar")) as (broker, seeded):
        keyring = broker.services.subjects.pseudonyms
        discharge = AgreementRef("ISA-HOSPITAL-DISCHARGE", "1", "sha256:" + "12" * 32)
        log = broker.services.audit
        # The council asked the hospital (the provider) about the child: the hospital sees it,
        # and its export redacts the council's officer and case reference.
        log.append(
            safeguarding_entry(
                keyring,
                client_id="ccc-adult-social-care",
                party_id=COUNCIL,
                user_id=COUNCIL_USER,
                user_role="social-worker",
                agreement=discharge,
                purpose="discharge-to-assess",
                dataset="r9z.discharge-summary",
                case_reference=COUNCIL_CASE,
            )
        )
        # The hospital's own exchange, with a case reference a spreadsheet would run.
        log.append(
            safeguarding_entry(
                keyring,
                agreement=discharge,
                purpose="discharge-to-assess",
                dataset="r9z.discharge-summary",
                case_reference=FORMULA_CASE,
            )
        )
        log.append(
            safeguarding_entry(
                keyring,
                client_id="ccc-school-admissions",
                party_id=COUNCIL,
                agreement=AgreementRef("ISA-SCHOOL-ADMISSIONS", "1", "sha256:" + "ef" * 32),
                purpose="school-admission-address-check",
                dataset="ccc.council-tax",
                subject=keyring.pseudonymise("uprn", UPRN),
            )
        )
        yield broker, seeded


@pytest.fixture
def caldicott(env: tuple[LiveBroker, Seeded]) -> Iterator[httpx.Client]:
    client = sign_in(env[0].url, "r9z-caldicott")
    yield client
    client.close()


def open_request(client: httpx.Client, **form: str) -> httpx.Response:
    csrf = csrf_of(client.get("/console/access-report").text)
    return client.post("/console/access-report", data={"csrf": csrf, **form})


def request_id_of(page: httpx.Response) -> str:
    return page.text.split("/console/access-report/", 1)[1].split("/", 1)[0]


def test_holds_are_marked_and_dates_recorded(
    env: tuple[LiveBroker, Seeded], caldicott: httpx.Client
) -> None:
    received = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=3)).isoformat()
    page = open_request(
        caldicott, subject_type="nhs_number", subject_value=CHILD_NHS, received=received
    )
    assert page.status_code == 200, page.text
    assert page.text.count("hold-marker") == 3  # the hospital's 3 safeguarding checks
    assert "subject access hold of 365 days, until" in page.text
    assert "r9z.discharge-summary" in page.text  # the council's request of its data
    assert due_date(dt.date.fromisoformat(received)).isoformat() in page.text
    listing = caldicott.get("/console/access-report").text
    assert request_id_of(page)[:8] in listing


def test_an_old_request_is_overdue(caldicott: httpx.Client) -> None:
    received = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=40)).isoformat()
    page = open_request(
        caldicott, subject_type="nhs_number", subject_value=CHILD_NHS, received=received
    )
    assert "overdue" in page.text
    listing = caldicott.get("/console/access-report").text
    row = listing.split(request_id_of(page)[:8], 1)[1].split("</tr>", 1)[0]
    assert "overdue" in row


@pytest.mark.parametrize(
    ("form", "problem"),
    [
        ({"subject_type": "nhs_number", "subject_value": "9990000019"}, "Modulus 11"),
        ({"subject_type": "transaction_id", "subject_value": "tx-1"}, "search by one of"),
        ({"subject_type": "uprn", "subject_value": "12ab"}, "UPRN"),
        (
            {"subject_type": "nhs_number", "subject_value": CHILD_NHS, "received": "2999-01-01"},
            "future",
        ),
        ({"subject_type": "nhs_number", "subject_value": CHILD_NHS, "received": "1.1.26"}, "YYYY"),
    ],
)
def test_bad_requests_are_refused_by_name(
    caldicott: httpx.Client, form: dict[str, str], problem: str
) -> None:
    page = open_request(caldicott, **form)
    assert page.status_code == 422
    assert problem.lower() in page.text.lower()


def test_every_identifier_kind_and_household_label(env: tuple[LiveBroker, Seeded]) -> None:
    dpo = sign_in(env[0].url, "council-dpo")
    try:
        page = open_request(dpo, subject_type="uprn", subject_value=UPRN)
        assert page.status_code == 200
        assert 'id="household"' in page.text
        assert "school-admission-address-check" in page.text
        for kind, value in (("person_id", PERSON_ID), ("council_tax_account", "CT00012345")):
            other = open_request(dpo, subject_type=kind, subject_value=value)
            assert other.status_code == 200
            assert ('id="household"' in other.text) == (kind == "council_tax_account")
        export = dpo.get(
            f"/console/access-report/{request_id_of(page)}/export", params={"format": "json"}
        ).json()
        assert export["request"]["household_level"] is True
        assert any("Household-level" in n for n in export["notes"])
    finally:
        dpo.close()


def _export(client: httpx.Client, request_id: str, fmt: str) -> httpx.Response:
    response = client.get(f"/console/access-report/{request_id}/export", params={"format": fmt})
    assert response.status_code == 200, response.text
    return response


def test_export_withholds_redacts_and_neutralises(
    env: tuple[LiveBroker, Seeded], caldicott: httpx.Client
) -> None:
    _, seeded = env
    page = open_request(caldicott, subject_type="nhs_number", subject_value=CHILD_NHS)
    request_id = request_id_of(page)
    doc: dict[str, Any] = _export(caldicott, request_id, "json").json()
    disclosed = doc["disclosed"]
    # The held safeguarding checks are withheld, each with why and until when.
    held = doc["withheld"]["held_exchanges"]
    assert {h["exchange_id"] for h in held} >= {seeded.hospital_allow, seeded.hospital_bg}
    assert all(h["reason"].startswith("subject access hold") and h["until"] for h in held)
    assert all(d["purpose"] != "child-protection-check" for d in disclosed)
    # The council's officer and case reference are redacted; the hospital's own are not.
    council = next(d for d in disclosed if d["organisation"] == COUNCIL)
    assert council["user_id"] == sar.REDACTED
    assert council["case_reference"] == sar.REDACTED
    own = next(d for d in disclosed if d["organisation"] == HOSPITAL)
    assert own["case_reference"] == FORMULA_CASE
    assert doc["withheld"]["redacted_values"] == 2
    assert sar.REDACTION_NOTE in doc["notes"]
    assert sar.HOLD_NOTE in doc["notes"]
    for fmt in ("json", "csv", "html"):
        text = _export(caldicott, request_id, fmt).text
        assert COUNCIL_CASE not in text
        assert COUNCIL_USER not in text
        assert "unconscious child" not in text  # justifications are never exported
        assert CHILD_NHS not in text
    rows = list(csv.reader(io.StringIO(_export(caldicott, request_id, "csv").text)))
    cells = [c for r in rows for c in r]
    assert "'" + FORMULA_CASE in cells
    assert not any(c.startswith(("=", "+", "-", "@")) for c in cells)
    assert any(r[0].startswith("withheld") for r in rows)
    printable = _export(caldicott, request_id, "html").text
    assert "not for disclosure" in printable
    assert "Calderbridge Hospitals NHS Foundation Trust" in printable


def test_another_partys_request_is_not_found(
    env: tuple[LiveBroker, Seeded], caldicott: httpx.Client
) -> None:
    dpo = sign_in(env[0].url, "council-dpo")
    try:
        theirs = request_id_of(
            open_request(dpo, subject_type="nhs_number", subject_value=CHILD_NHS)
        )
    finally:
        dpo.close()
    assert caldicott.get(f"/console/access-report/{theirs}").status_code == 404
    for fmt in ("json", "csv", "html"):
        response = caldicott.get(f"/console/access-report/{theirs}/export", params={"format": fmt})
        assert response.status_code == 404
    page = caldicott.get("/console/access-report")
    closing = caldicott.post(
        f"/console/access-report/{theirs}/close", data={"csrf": csrf_of(page.text)}
    )
    assert closing.status_code == 404
    assert theirs[:8] not in caldicott.get("/console/access-report").text


def test_roles_without_subject_access_are_refused(env: tuple[LiveBroker, Seeded]) -> None:
    for username in ("council-isa-admin", "internal-auditor"):
        client = sign_in(env[0].url, username)
        try:
            assert client.get("/console/access-report").status_code == 403
        finally:
            client.close()


def test_every_search_and_export_is_logged_by_pseudonym(
    env: tuple[LiveBroker, Seeded], caldicott: httpx.Client
) -> None:
    broker, _ = env
    page = open_request(caldicott, subject_type="nhs_number", subject_value=CHILD_NHS)
    request_id = request_id_of(page)
    _export(caldicott, request_id, "csv")
    with broker.services.audit.engine.connect() as conn:
        leaves = [
            bytes(r[0])
            for r in conn.execute(
                select(audit_entries.c.leaf).order_by(audit_entries.c.idx.desc()).limit(20)
            )
        ]
    mentioning = [leaf for leaf in leaves if request_id.encode() in leaf]
    assert any(b"console-subject-access-opened" in leaf for leaf in mentioning)
    assert any(b"console:subject-access-search" in leaf for leaf in mentioning)
    assert any(b"console:subject-access-export" in leaf for leaf in mentioning)
    pseudonym = broker.services.subjects.pseudonyms.pseudonymise("nhs_number", CHILD_NHS).value
    assert all(pseudonym.encode() in leaf for leaf in mentioning)
    assert all(CHILD_NHS.encode() not in leaf for leaf in leaves)
