"""Search, reads, export and redaction on a stored log, and database errors translated."""

from __future__ import annotations

import base64
import csv
import io
import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from broker.audit.checkpoint import open_checkpoint
from broker.audit.entry import (
    AuditEntry,
)
from broker.audit.errors import (
    AuditEntryError,
    AuditNotFoundError,
    AuditQueryError,
    AuditUnavailableError,
)
from broker.audit.export import export
from broker.audit.log import AuditLog
from broker.audit.redact import redact_before, redact_by_retention
from broker.audit.search import AuditScope as Scope
from broker.audit.search import SearchFilters, audit_read_entry, get_exchange, search
from broker.audit.verify import verify_log
from broker.core import merkle
from broker.core.pseudonym import pseudonymise
from tests.audit.conftest import PSEUDONYM_KEY, make_entry


def test_search_filters_and_cursor_pagination(filled: AuditLog) -> None:
    everything = search(filled.engine, SearchFilters(), limit=500)
    assert len(everything.items) == 57
    assert everything.next_cursor is None
    assert everything.items[0]["leaf_index"] == 56  # newest first
    seen: list[object] = []
    cursor = None
    while True:
        page = search(filled.engine, SearchFilters(decision="deny"), cursor=cursor, limit=4)
        seen.extend(item["leaf_index"] for item in page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [i for i in range(56, -1, -1) if i % 3 == 0]
    glass = search(filled.engine, SearchFilters(break_glass_only=True), limit=100)
    assert [i["leaf_index"] for i in glass.items] == [50, 40, 30, 20, 10, 0]
    subject = pseudonymise(PSEUDONYM_KEY, "nhs_number", "999 000 0018").value
    by_subject = search(filled.engine, SearchFilters(subject_pseudonyms=(subject,)), limit=100)
    assert len(by_subject.items) == 57
    window = SearchFilters(time_from_ms=1_795_900_010_000, time_to_ms=1_795_900_020_000)
    assert len(search(filled.engine, window, limit=100).items) == 10
    none = SearchFilters(agreement_id="ISA-NONE", party_id="R9Z")
    assert search(filled.engine, none).items == []


def test_search_refuses_bad_cursors_and_limits(filled: AuditLog) -> None:
    with pytest.raises(AuditQueryError, match="cursor"):
        search(filled.engine, SearchFilters(), cursor="not-a-cursor")
    with pytest.raises(AuditQueryError, match="limit"):
        search(filled.engine, SearchFilters(), limit=0)


def test_get_exchange_shows_digests_not_records(filled: AuditLog) -> None:
    with filled.engine.connect() as conn:
        exchange_id = conn.execute(
            text("SELECT exchange_id FROM audit_entries WHERE idx = 10")
        ).scalar_one()
    view = get_exchange(filled.engine, exchange_id)
    assert view["leaf_index"] == 10
    assert view["break_glass"] is True
    assert view["justification"] == "child attended ED with injuries"
    assert isinstance(view["released_digest"], str)
    json.dumps(view)
    with pytest.raises(AuditNotFoundError):
        get_exchange(filled.engine, "nope")


def test_redaction_keeps_verify_passing_and_removes_values(filled: AuditLog) -> None:
    cutoff = 1_795_900_000_000 + 20 * 1000  # entries 0..19 are older
    result = redact_before(filled, cutoff, actor="dpo-cli")
    assert result.entries_redacted == 20
    with filled.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT user_id, user_id_salt, case_reference, subject_pseudonym,"
                " record_salt FROM audit_entries WHERE idx < 20"
            )
        ).all()
        dump = "".join(str(r) for r in conn.execute(text("SELECT * FROM audit_entries")))
    assert all(v is None for row in rows for v in row)
    assert "ED-2026-11-0005" not in dump
    assert "ED-2026-11-0025" in dump
    report = verify_log(filled.engine, filled.signer.public_key, origin=filled.signer.origin)
    assert report.ok, report.problems
    assert get_exchange(filled.engine, str(_exchange_id(filled.engine, 5)))["redacted"] is True
    database = Path(str(filled.engine.url.database))
    raw = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    assert b"ED-2026-11-0005" not in raw  # not left behind in freed pages or the WAL
    assert b"ED-2026-11-0025" in raw


def test_redaction_by_retention(filled: AuditLog) -> None:
    now = 1_795_900_000_000 + 30 * 1000 + 2 * 86_400_000
    result = redact_by_retention(filled, 2, now_ms=now)
    assert result.entries_redacted == 30


def test_removing_values_after_the_redaction_cutoff_is_caught(filled: AuditLog) -> None:
    redact_before(filled, 1_795_900_000_000 + 20 * 1000)
    with filled.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE audit_entries SET subject_pseudonym = NULL,"
                " subject_pseudonym_salt = NULL WHERE idx = 25"
            )
        )
    report = verify_log(filled.engine, filled.signer.public_key)
    assert report.first_bad_entry == 25


def _exchange_id(engine: Engine, index: int) -> object:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT exchange_id FROM audit_entries WHERE idx = :i"), {"i": index}
        ).scalar_one()


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_export_carries_what_checks_each_entry_offline(filled: AuditLog, fmt: str) -> None:
    out = io.StringIO()
    window = {"from_ms": 1_795_900_010_000, "to_ms": 1_795_900_015_000}
    count = export(filled, out, fmt=fmt, **window)  # type: ignore[arg-type]
    assert count == 5
    public = filled.signer.public_key
    if fmt == "jsonl":
        lines = [json.loads(line) for line in out.getvalue().splitlines()]
        cp = open_checkpoint(lines[0]["note"], public)
        entries = lines[1:]
        items = [
            (e["leaf_index"], e["leaf_base64"], e["inclusion_proof"], e["tree_size"])
            for e in entries
        ]
    else:
        rows = list(csv.DictReader(io.StringIO(out.getvalue())))
        cp = open_checkpoint(rows[0]["checkpoint_note"], public)
        items = [
            (
                int(r["leaf_index"]),
                r["leaf_base64"],
                r["inclusion_proof"].split(),
                int(r["tree_size"]),
            )
            for r in rows
        ]
    assert [i[0] for i in items] == [10, 11, 12, 13, 14]
    for index, leaf64, proof, size in items:
        assert size == cp.tree_size
        leaf = merkle.leaf_hash(base64.b64decode(leaf64))
        assert merkle.verify_inclusion(
            index, size, leaf, [bytes.fromhex(h) for h in proof], cp.root
        )


def test_append_entry_kinds_for_admin_and_audit_reads(log: AuditLog, tmp_path: Path) -> None:
    log.append(
        AuditEntry(kind="admin", client_id="admin-cli", details={"action": "clients.suspend"})
    )
    log.append(
        audit_read_entry(
            client_id="ccc-governance",
            party_id="calderbridge-city-council",
            resource="/v1/exchanges",
            query={"decision": "deny"},
        )
    )
    log.append(AuditEntry(kind="simulation", decision="deny", details={"weight": 0.5}))
    page = search(log.engine, SearchFilters(kind="audit-read"))
    assert len(page.items) == 1
    assert verify_log(log.engine, log.signer.public_key).ok


BROKEN_CALLS: dict[str, Callable[[AuditLog, str], object]] = {
    "append": lambda log, _: log.append(make_entry(1)),
    "checkpoint_now": lambda log, _: log.checkpoint_now(),
    "checkpoint_if_due": lambda log, _: log.checkpoint_if_due(),
    "size": lambda log, _: log.size(),
    "inclusion_proof": lambda log, x: log.inclusion_proof(exchange_id=x),
    "consistency_proof": lambda log, _: log.consistency_proof(0, 1),
    "receipt": lambda log, x: log.receipt(x),
    "search": lambda log, _: search(log.engine, SearchFilters()),
    "get_exchange": lambda log, x: get_exchange(log.engine, x),
    "export": lambda log, _: export(log, io.StringIO(), fmt="jsonl"),
}


@pytest.mark.parametrize("call", BROKEN_CALLS.values(), ids=BROKEN_CALLS.keys())
def test_no_database_error_escapes_untranslated(
    log: AuditLog, call: Callable[[AuditLog, str], object]
) -> None:
    exchange_id = log.append(make_entry(0)).exchange_id
    log.checkpoint_now()
    with log.engine.begin() as conn:
        conn.execute(text("DROP TABLE audit_entries"))
        conn.execute(text("DROP TABLE audit_head"))
    with pytest.raises(AuditUnavailableError):
        call(log, exchange_id)


def test_verify_reads_a_consistent_snapshot_while_appends_go_on(filled: AuditLog) -> None:
    stop = threading.Event()

    def keep_appending() -> None:
        i = 1000
        while not stop.is_set():
            filled.append(make_entry(i))
            i += 1

    writer = threading.Thread(target=keep_appending)
    writer.start()
    try:
        reports = [verify_log(filled.engine, filled.signer.public_key) for _ in range(5)]
    finally:
        stop.set()
        writer.join()
    assert all(r.ok for r in reports), [r.problems for r in reports]
    assert reports[-1].entries_checked > 57


def test_governance_scope_limits_search_and_reads(log: AuditLog) -> None:
    own = log.append(make_entry(0, party_id="R9Z", agreement=None)).exchange_id
    shared = log.append(make_entry(1, party_id="west-calder-police", client_id="wcp-mash"))
    other = log.append(
        make_entry(2, party_id="west-calder-police", client_id="wcp-mash", agreement=None)
    ).exchange_id
    # The hospital provides its own datasets only: the police's check of the council's data
    # under the agreement both signed is not the hospital's to see.
    hospital = Scope("R9Z", ("r9z.ed-attendances",))
    page = search(log.engine, SearchFilters(), scope=hospital)
    assert [i["leaf_index"] for i in page.items] == [0]
    assert get_exchange(log.engine, own, scope=hospital)["leaf_index"] == 0
    for hidden in (shared.exchange_id, other):
        with pytest.raises(AuditNotFoundError):
            get_exchange(log.engine, hidden, scope=hospital)
    # The council provided the data: it sees every party's checks of it.
    council = Scope("calderbridge-city-council", ("ccc.child-protection",))
    assert [i["leaf_index"] for i in search(log.engine, SearchFilters(), scope=council).items] == [
        2,
        1,
        0,
    ]
    assert len(search(log.engine, SearchFilters(), scope=Scope("R9Z")).items) == 1


def test_redaction_cannot_reach_into_the_future(filled: AuditLog) -> None:
    with pytest.raises(AuditEntryError, match="future"):
        redact_before(filled, 4_000_000_000_000)


def test_a_redaction_covers_nothing_newer_than_itself(log: AuditLog) -> None:
    """A redaction entry claiming a cut-off after its own time covers only up to its time."""
    now = 1_795_900_000_000
    log.append(make_entry(0, time_ms=now))
    log.append(make_entry(1, time_ms=now + 50))  # logged before, but timed after, the redaction
    log.append(
        AuditEntry(
            kind="redaction",
            time_ms=now + 10,
            details={"before": "2100-01-01T00:00:00.000Z", "before_ms": 4_102_444_800_000},
        )
    )
    with log.engine.begin() as conn:
        conn.execute(
            text("UPDATE audit_entries SET user_id = NULL, user_id_salt = NULL WHERE idx IN (0, 1)")
        )
    report = verify_log(log.engine, log.signer.public_key)
    assert report.first_bad_entry == 1
    assert any("no logged redaction covers it" in p.message for p in report.problems)
