"""The SQL adapter against the demo council databases (real SQLite files; PostgreSQL if set)."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError, OperationalError

from adapters.bindings import SourceConfig, parse_bindings
from adapters.errors import (
    BindingError,
    MultipleMatches,
    SourceBadData,
    SourceUnavailable,
    SubjectNotFound,
    WrongSubject,
)
from adapters.sql import build_read_only_engine
from broker.core.errors import InvalidInput
from broker.core.identifiers import parse_subject
from demo.sources import subjects
from demo.sources.council_db import write_system
from demo.sources.runtime import DemoSources
from tests.adapters.conftest import open_sources

CP = "ccc.child-protection"


@pytest.mark.parametrize(
    ("id_type", "value"),
    [
        pytest.param("nhs_number", subjects.CHILD_ON_PLAN.nhs_number, id="by-nhs-number"),
        pytest.param("nhs_number", "999 000 0018", id="by-spaced-nhs-number"),
        pytest.param("person_id", subjects.CHILD_ON_PLAN.person_id, id="by-person-id"),
    ],
)
async def test_child_on_plan_only_asked_fields(demo: DemoSources, id_type: str, value: str) -> None:
    fields = [
        "name.family",
        "child_protection_plan.status",
        "child_protection_plan.category",
        "looked_after.status",
        "child_protection_plan.start_date",
    ]
    async with open_sources(demo.bindings) as sources:
        record = await sources.fetch(CP, parse_subject(id_type, value), fields)
    assert record == {
        "name": {"family": "Hartley"},
        "child_protection_plan": {
            "status": "active",
            "category": "neglect",
            "start_date": "2026-08-14",
        },
        "looked_after": {"status": False},
    }


@pytest.mark.parametrize(
    ("subject", "status", "looked_after"),
    [
        pytest.param(subjects.CHILD_WITHOUT_PLAN, "none", False, id="no-plan"),
        pytest.param(subjects.LOOKED_AFTER_CHILD, "ended", True, id="looked-after"),
    ],
)
async def test_other_children(
    demo: DemoSources, subject: Any, status: str, looked_after: bool
) -> None:
    async with open_sources(demo.bindings) as sources:
        record = await sources.fetch(
            CP,
            parse_subject("nhs_number", subject.nhs_number),
            ["child_protection_plan.status", "looked_after.status"],
        )
    assert record == {
        "child_protection_plan": {"status": status},
        "looked_after": {"status": looked_after},
    }


async def test_adult_is_not_in_childrens_services(demo: DemoSources) -> None:
    async with open_sources(demo.bindings) as sources:
        with pytest.raises(SubjectNotFound, match="no record"):
            await sources.fetch(CP, parse_subject("person_id", "P0000002"), ["name.family"])


@pytest.mark.parametrize(
    ("claims", "holds"),
    [
        pytest.param(
            {"address.postcode": "cx2 7pq", "address.line1": "3 Linden Close"},
            True,
            id="postcode-case-and-spacing",
        ),
        pytest.param({"address.postcode": "CX2 7PR"}, False, id="wrong-postcode"),
        pytest.param(
            {"address.postcode": "CX2 7PQ", "account.band": "H"}, False, id="one-claim-wrong"
        ),
    ],
)
async def test_council_tax_verification(
    demo: DemoSources, claims: dict[str, object], holds: bool
) -> None:
    async with open_sources(demo.bindings) as sources:
        answer = await sources.verify(
            "ccc.council-tax", parse_subject("uprn", subjects.HOUSEHOLD.uprn), claims
        )
    assert answer.match is holds


async def test_verify_names_the_record_by_its_key_whatever_identifier_was_asked(
    demo: DemoSources,
) -> None:
    household = subjects.HOUSEHOLD
    claims = {"address.postcode": "CX2 7PQ"}
    async with open_sources(demo.bindings) as sources:
        by_uprn = await sources.verify(
            "ccc.council-tax", parse_subject("uprn", household.uprn), claims
        )
        account = (
            await sources.fetch(
                "ccc.council-tax", parse_subject("uprn", household.uprn), ["account.reference"]
            )
        )["account"]["reference"]
        by_account = await sources.verify(
            "ccc.council-tax", parse_subject("council_tax_account", account.lower()), claims
        )
    assert by_uprn.record_key == by_account.record_key == f"@key={account}"
    assert by_uprn.match is by_account.match is True


async def test_a_claim_may_not_name_the_internal_key(demo: DemoSources) -> None:
    async with open_sources(demo.bindings) as sources:
        with pytest.raises(InvalidInput):
            await sources.verify(
                "ccc.council-tax", parse_subject("uprn", subjects.HOUSEHOLD.uprn), {"@key": "x"}
            )


async def test_spd_household_has_two_electors(demo: DemoSources) -> None:
    uprn = parse_subject("uprn", subjects.SPD_REVIEW_HOUSEHOLD.uprn)
    async with open_sources(demo.bindings) as sources:
        tax = await sources.fetch("ccc.council-tax", uprn, ["single_person_discount.status"])
        roll = await sources.fetch("ccc.electoral-register", uprn, ["electors.count"])
    assert tax == {"single_person_discount": {"status": True}}
    assert roll == {"electors": {"count": 2}}


async def test_decimal_stays_exact(demo: DemoSources) -> None:
    async with open_sources(demo.bindings) as sources:
        record = await sources.fetch(
            "ccc.benefit-claims",
            parse_subject("person_id", subjects.BENEFITS_CLAIMANT.person_id),
            ["claim.weekly_amount", "claim.type"],
        )
    assert record == {"claim": {"weekly_amount": "112.40", "type": "housing-benefit"}}


async def test_unmapped_field_and_unaccepted_identifier(demo: DemoSources) -> None:
    async with open_sources(demo.bindings) as sources:
        with pytest.raises(BindingError, match=r"no mapping for field 'name\.middle'"):
            await sources.fetch(CP, parse_subject("person_id", "P0000001"), ["name.middle"])
        with pytest.raises(InvalidInput, match="not keyed by that identifier"):
            await sources.fetch(CP, parse_subject("uprn", "100000000001"), ["name.family"])


def _odd_database(path: Path, rows: list[tuple[str, str, str]], collate: str = "") -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(f"CREATE TABLE person (person_id TEXT {collate}, family TEXT, born TEXT)")
        conn.executemany("INSERT INTO person VALUES (?, ?, ?)", rows)
    conn.close()


def _odd_bindings(path: Path) -> Any:
    return parse_bindings(
        {
            "sources": {
                "odd": {
                    "kind": "sql",
                    "endpoint": f"sqlite:///{path}",
                    "retries": {"max_attempts": 2, "backoff_base_seconds": 0.0},
                }
            },
            "datasets": {
                "odd.people": {
                    "source": "odd",
                    "identifiers": {"person_id": "person_id"},
                    "options": {"table": "person", "types": {"date_of_birth": "date"}},
                    "fields": {"name.family": "family", "date_of_birth": "born"},
                }
            },
        }
    )


@pytest.mark.parametrize(
    ("rows", "collate", "error", "match"),
    [
        pytest.param(
            [("P0000001", "Hartley", "2020-05-15"), ("P0000001", "Hartly", "2020-05-15")],
            "",
            MultipleMatches,
            "matched 2 records",
            id="two-matches",
        ),
        pytest.param(
            [("p0000001", "Someone", "1990-01-01")],
            "COLLATE NOCASE",
            WrongSubject,
            "not the one asked for",
            id="case-insensitive-collation-other-person",
        ),
        pytest.param(
            [("P0000001", "Hartley", "15/05/2020")],
            "",
            SourceBadData,
            "field date_of_birth",
            id="garbage-date-names-the-field",
        ),
    ],
)
async def test_wrong_person_guard_and_bad_data(
    tmp_path: Path,
    rows: list[tuple[str, str, str]],
    collate: str,
    error: type[Exception],
    match: str,
) -> None:
    path = tmp_path / "odd.db"
    _odd_database(path, rows, collate)
    async with open_sources(_odd_bindings(path)) as sources:
        with pytest.raises(error, match=match):
            await sources.fetch(
                "odd.people",
                parse_subject("person_id", "P0000001"),
                ["name.family", "date_of_birth"],
            )


async def test_missing_database_is_unavailable(tmp_path: Path) -> None:
    async with open_sources(_odd_bindings(tmp_path / "absent.db")) as sources:
        with pytest.raises(SourceUnavailable, match="unavailable"):
            await sources.fetch(
                "odd.people", parse_subject("person_id", "P0000001"), ["name.family"]
            )
    assert not (tmp_path / "absent.db").exists()


def test_sqlite_source_is_read_only(tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    _odd_database(path, [("P0000001", "Hartley", "2020-05-15")])
    engine = build_read_only_engine(
        SourceConfig(name="ro", kind="sql", endpoint=f"sqlite:///{path}")
    )
    try:
        with engine.connect() as conn, pytest.raises(OperationalError, match="readonly"):
            conn.execute(text("DELETE FROM person"))
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def postgres_schema() -> Iterator[tuple[str, str]]:
    url = os.environ.get("BROKER_TEST_DATABASE_URL")
    if not url:
        pytest.skip("BROKER_TEST_DATABASE_URL is not set: PostgreSQL SQL adapter test skipped")
    from demo.sources.population import generate

    schema = f"adapters_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    writer = create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        write_system(writer, "childrens_social_care", generate(residents=300))
        yield url, schema
    finally:
        writer.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.mark.postgres
async def test_postgresql_child_protection(
    demo: DemoSources, postgres_schema: tuple[str, str]
) -> None:
    url, schema = postgres_schema
    binding = demo.bindings.get(CP)
    bindings = demo.bindings.with_source(
        binding.source.name, endpoint=url, options={"schema": schema}
    )
    async with open_sources(bindings) as sources:
        record = await sources.fetch(
            CP,
            parse_subject("nhs_number", subjects.CHILD_ON_PLAN.nhs_number),
            ["child_protection_plan.status", "date_of_birth", "looked_after.status"],
        )
        with pytest.raises(SubjectNotFound, match="no record"):
            await sources.fetch(CP, parse_subject("person_id", "P0000002"), ["name.family"])
    engine = build_read_only_engine(bindings.get(CP).source)
    try:
        with engine.connect() as conn, pytest.raises(DBAPIError, match="read-only transaction"):
            conn.execute(text("DELETE FROM csc_person"))
    finally:
        engine.dispose()
    assert record == {
        "child_protection_plan": {"status": "active"},
        "date_of_birth": "2020-05-15",
        "looked_after": {"status": False},
    }


async def test_open_spending_data_by_transaction(demo: DemoSources) -> None:
    async with open_sources(demo.bindings) as sources:
        record = await sources.fetch(
            "ccc.spending-over-500",
            parse_subject("transaction_id", "TX-2026-000001"),
            ["payment.amount", "payment.date"],
        )
    assert set(record["payment"]) == {"amount", "date"}
    assert record["payment"]["amount"].count(".") == 1
