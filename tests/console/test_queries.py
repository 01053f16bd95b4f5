"""Console reads of the audit log, on SQLite and (with BROKER_TEST_DATABASE_URL) PostgreSQL:
scoped search, monthly figures, the break-glass queue, fields released most."""

from __future__ import annotations

import datetime as dt
import os
import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, create_engine, insert, text

from broker.audit import store
from broker.audit.entry import AgreementRef, AuditEntry, seal
from broker.audit.log import AuditLog, LogSigner
from broker.audit.search import AuditScope as Scope
from broker.audit.search import SearchFilters, search
from broker.console import queries
from broker.console.tables import console_reviews
from broker.db.engine import build_engine, normalise_url
from broker.db.migrate import upgrade

PG_URL = os.environ.get("BROKER_TEST_DATABASE_URL")
AGREEMENTS = ("ISA-A", "ISA-B", "ISA-C")
PARTIES = ("R9Z", "calderbridge-city-council", "west-calder-police")
DATASETS = ("ds-a", "ds-b", "ds-c")
BASE = dt.date(2026, 1, 1)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        e = build_engine(f"sqlite:///{tmp_path / 'q.db'}")
        upgrade(e)
        yield e
        e.dispose()
        return
    if not PG_URL:
        pytest.skip("BROKER_TEST_DATABASE_URL is not set: PostgreSQL leg skipped")
    schema = "console_test_" + uuid.uuid4().hex[:12]
    admin = create_engine(normalise_url(PG_URL))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    e = build_engine(f"{normalise_url(PG_URL)}{sep}options=-csearch_path%3D{schema}")
    upgrade(e)
    try:
        yield e
    finally:
        e.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def log(engine: Engine) -> AuditLog:
    return AuditLog(engine, LogSigner("console.test/audit", Ed25519PrivateKey.generate()))


def _entries(seed: int, count: int) -> list[AuditEntry]:
    rng = random.Random(seed)
    start = queries.month_ms(BASE)
    out = []
    for i in range(count):
        out.append(
            AuditEntry(
                time_ms=start + rng.randrange(0, 200 * 86_400_000),
                client_id=f"client-{i % 4}",
                party_id=rng.choice(PARTIES),
                agreement=AgreementRef(rng.choice(AGREEMENTS), "1", "sha256:" + "ab" * 32),
                dataset=rng.choice(DATASETS),
                decision=rng.choice(("allow", "allow", "deny", "error")),
                break_glass=rng.random() < 0.2,
                released_fields=tuple(rng.sample(("a", "b", "c", "d"), 2)),
            )
        )
    return sorted(out, key=lambda e: e.time_ms)


@pytest.fixture
def filled(log: AuditLog) -> tuple[AuditLog, list[AuditEntry]]:
    entries = _entries(1, 120)
    extra = AuditEntry(kind="audit-read", party_id="R9Z", details={"resource": "x"})
    store.commit_batch(  # one transaction: the appends themselves are not under test here
        log.engine,
        [seal(e) for e in [*entries, extra]],
        now_ms=0,
        sign=log.signer.sign,
        policy=store.CheckpointPolicy(),
    )
    return log, entries


SCOPES = [
    Scope("R9Z"),
    Scope("R9Z", ("ds-a",)),
    Scope("west-calder-police", ("ds-b", "ds-c")),
    Scope("nobody", ()),
]
FILTERS = [
    SearchFilters(kind="exchange"),
    SearchFilters(kind="exchange", decision="deny"),
    SearchFilters(break_glass_only=True),
    SearchFilters(agreement_id="ISA-C", client_id="client-1"),
]


@pytest.mark.parametrize("scope", SCOPES, ids=lambda s: f"{s.party_id}+{len(s.provided_datasets)}")
@pytest.mark.parametrize(
    "filters", FILTERS, ids=["exchanges", "denied", "break-glass", "agr+client"]
)
@pytest.mark.parametrize("page_size", [1, 7, 500], ids=["1", "7", "500"])
@pytest.mark.parametrize("oldest_first", [False, True], ids=["newest", "oldest"])
def test_scoped_search_pages_through_exactly_the_scope(
    filled: tuple[AuditLog, list[AuditEntry]],
    scope: Scope,
    filters: SearchFilters,
    page_size: int,
    oldest_first: bool,
) -> None:
    log, _ = filled
    everything = search(log.engine, SearchFilters(), limit=500).items

    def wanted(item: dict[str, object]) -> bool:
        agreement = item["agreement"]
        agreement_id = agreement["id"] if isinstance(agreement, dict) else None
        # The party asked (its entry) or provided (the dataset is its own); sharing an
        # agreement is not enough.
        in_scope = item["party_id"] == scope.party_id or item["dataset"] in scope.provided_datasets
        assert in_scope == scope.covers(item)
        return (
            in_scope
            and (filters.kind is None or item["kind"] == filters.kind)
            and (filters.decision is None or item["decision"] == filters.decision)
            and (not filters.break_glass_only or bool(item["break_glass"]))
            and (filters.agreement_id is None or agreement_id == filters.agreement_id)
            and (filters.client_id is None or item["client_id"] == filters.client_id)
        )

    expected = [i["exchange_id"] for i in everything if wanted(i)]
    if oldest_first:
        expected.reverse()
    got: list[object] = []
    cursor = None
    while True:
        page = search(
            log.engine,
            filters,
            scope=scope,
            cursor=cursor,
            limit=page_size,
            oldest_first=oldest_first,
        )
        got.extend(i["exchange_id"] for i in page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert got == expected


def test_monthly_figures_count_each_month(filled: tuple[AuditLog, list[AuditEntry]]) -> None:
    log, entries = filled
    months = [queries.add_months(BASE, i) for i in range(7)]
    figures = queries.monthly_figures(log.engine, ["ISA-A", "ISA-B", "ISA-UNUSED"], months)
    for agreement in ("ISA-A", "ISA-B"):
        for k, month in enumerate(months):
            lo, hi = queries.month_ms(month), queries.month_ms(queries.add_months(month, 1))
            mine = [
                e
                for e in entries
                if e.agreement and e.agreement.id == agreement and lo <= e.time_ms < hi
            ]
            got = figures[agreement].months[k]
            assert got.allow == sum(e.decision == "allow" for e in mine)
            assert got.deny == sum(e.decision == "deny" for e in mine)
            assert got.other == sum(e.decision == "error" for e in mine)
            assert got.break_glass == sum(e.break_glass for e in mine)
    assert figures["ISA-UNUSED"].total == 0
    assert "ISA-C" not in figures


def test_month_arithmetic() -> None:
    assert queries.add_months(dt.date(2026, 11, 1), 2) == dt.date(2027, 1, 1)
    assert queries.add_months(dt.date(2026, 1, 1), -1) == dt.date(2025, 12, 1)
    assert queries.months_ending(dt.date(2026, 2, 17), 3) == [
        dt.date(2025, 12, 1),
        dt.date(2026, 1, 1),
        dt.date(2026, 2, 1),
    ]


def test_break_glass_queue_splits_pending_and_reviewed(
    filled: tuple[AuditLog, list[AuditEntry]],
) -> None:
    log, entries = filled
    glass = [e.exchange_id for e in reversed(entries) if e.break_glass]
    assert glass
    with log.engine.begin() as conn:
        conn.execute(
            insert(console_reviews).values(
                exchange_id=glass[0],
                outcome="referred",
                note="n",
                reviewer="r",
                reviewer_party="R9Z",
                reviewed_ms=1,
            )
        )
    every = []
    cursor = None
    while True:
        page = queries.break_glass_queue(log.engine, status="all", cursor=cursor, limit=3)
        every.extend(page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert [i.entry["exchange_id"] for i in every] == glass
    pending = queries.break_glass_queue(log.engine, status="pending", limit=500).items
    reviewed = queries.break_glass_queue(log.engine, status="reviewed", limit=500).items
    assert [i.entry["exchange_id"] for i in pending] == glass[1:]
    assert [(i.entry["exchange_id"], i.review.outcome if i.review else None) for i in reviewed] == [
        (glass[0], "referred")
    ]
    assert queries.count_pending_break_glass(log.engine) == len(glass) - 1
    scoped = queries.break_glass_queue(log.engine, status="all", scope=Scope("nobody"))
    assert scoped.items == []


def test_fields_released_most(filled: tuple[AuditLog, list[AuditEntry]]) -> None:
    log, entries = filled
    allowed = [
        e for e in entries if e.agreement and e.agreement.id == "ISA-A" and e.decision == "allow"
    ]
    top, looked = queries.fields_released_most(log.engine, "ISA-A", top=4)
    assert looked == len(allowed)
    expected = {f: sum(f in e.released_fields for e in allowed) for f in "abcd"}
    assert dict(top) == {f: n for f, n in expected.items() if n}
