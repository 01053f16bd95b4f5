"""Appending, checkpoints, proofs, receipts, search, export and redaction on a stored log."""

from __future__ import annotations

import base64
import csv
import io
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, text

from broker.api.exchanges import receipt_json
from broker.audit.checkpoint import open_checkpoint
from broker.audit.entry import (
    AuditEntry,
    check_released_record,
    digest_released_record,
    parse_leaf,
)
from broker.audit.errors import (
    AuditEntryError,
    AuditNotFoundError,
    AuditQueryError,
    AuditUnavailableError,
    ProofError,
    ReceiptError,
)
from broker.audit.export import export
from broker.audit.log import AuditLog, LogSigner
from broker.audit.receipts import check_receipt
from broker.audit.redact import redact_before, redact_by_retention
from broker.audit.search import AuditScope as Scope
from broker.audit.search import SearchFilters, audit_read_entry, get_exchange, search
from broker.audit.store import CheckpointPolicy
from broker.audit.verify import verify_log
from broker.core import merkle
from broker.core.errors import Unavailable
from broker.core.pseudonym import pseudonymise
from tests.audit.conftest import PSEUDONYM_KEY, make_entry


def test_append_returns_the_durable_position(log: AuditLog) -> None:
    first = log.append(make_entry(0))
    second = log.append(make_entry(1))
    assert (first.leaf_index, second.leaf_index) == (0, 1)
    assert log.size() == 2
    receipt = receipt_json(second)
    assert receipt["leaf_hash"] == second.leaf_hash.hex()
    assert receipt["record_salt"] is not None


def test_the_record_itself_is_never_stored(log: AuditLog) -> None:
    record = {"child_protection_plan": {"status": "active-secret-marker"}}
    released = digest_released_record(record)
    appended = log.append(make_entry(0, released=released))
    with log.engine.connect() as conn:
        dump = "".join(str(r) for r in conn.execute(text("SELECT * FROM audit_entries")))
    assert "secret-marker" not in dump
    assert check_released_record(record, released.salt, released.digest)
    assert appended.record_salt == released.salt


def test_personal_fields_are_only_commitments_in_the_leaf(log: AuditLog) -> None:
    log.append(make_entry(0, user_id="ed-nurse-unique-77", case_reference="ED-UNIQUE-9"))
    with log.engine.connect() as conn:
        leaf = bytes(conn.execute(text("SELECT leaf FROM audit_entries")).scalar_one())
    assert b"ed-nurse-unique-77" not in leaf
    assert b"ED-UNIQUE-9" not in leaf
    _, body = parse_leaf(leaf)
    assert set(body["commitments"]) == {
        "subject_pseudonym",
        "user_id",
        "justification",
        "case_reference",
    }


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"decision": "maybe"}, "decision"),
        ({"kind": "gossip"}, "kind"),
        ({"decision": None}, "needs a decision"),
        ({"obligations": (object(),)}, "not a JSON value"),
        ({"latency_us": 1.5}, "latency_us"),
    ],
    ids=["bad-decision", "bad-kind", "exchange-without-decision", "not-json", "float-latency"],
)
def test_malformed_entries_are_refused_before_anything_is_written(
    log: AuditLog, overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(AuditEntryError, match=message):
        log.append(make_entry(0, **overrides))
    assert log.size() == 0


def test_a_failed_commit_raises_an_error_the_pipeline_cannot_ignore(log: AuditLog) -> None:
    log.append(make_entry(0))
    with log.engine.begin() as conn:
        conn.execute(text("DROP TABLE audit_nodes"))
    with pytest.raises(AuditUnavailableError, match="audit log write failed") as caught:
        log.append(make_entry(1))
    assert isinstance(caught.value, Unavailable)


def test_a_duplicate_exchange_id_fails_alone_in_its_batch(log: AuditLog) -> None:
    first = log.append(make_entry(0))
    with pytest.raises(AuditUnavailableError, match="refused by the store"):
        log.append(make_entry(1, exchange_id=first.exchange_id))
    assert log.append(make_entry(2)).leaf_index == 1


def test_concurrent_appends_share_commits_and_make_one_sequence(log: AuditLog) -> None:
    barrier = threading.Barrier(16)

    def work(w: int) -> list[int]:
        barrier.wait()
        return [log.append(make_entry(w * 100 + i)).leaf_index for i in range(25)]

    with ThreadPoolExecutor(16) as pool:
        indexes = [i for chunk in pool.map(work, range(16)) for i in chunk]
    assert sorted(indexes) == list(range(400))
    report = verify_log(log.engine, log.signer.public_key, origin=log.signer.origin)
    assert report.ok, report.problems
    assert report.entries_checked == 400


def test_checkpoints_every_n_entries_and_on_demand(log: AuditLog) -> None:
    for i in range(23):
        log.append(make_entry(i))
    with log.engine.connect() as conn:
        sizes = [r[0] for r in conn.execute(text("SELECT tree_size FROM audit_checkpoints"))]
    assert sizes == [1, 11, 21]
    now = log.checkpoint_now()
    assert now.tree_size == 23
    assert log.checkpoint_now() == now  # nothing new: the same checkpoint
    opened = open_checkpoint(now.note, log.signer.public_key, log.signer.origin)
    assert opened.root == now.root


def test_timed_checkpoints(engine: Engine, signer: LogSigner) -> None:
    clock = [1_000_000]
    log = AuditLog(
        engine,
        signer,
        policy=CheckpointPolicy(every_entries=1000, every_seconds=5),
        clock_ms=lambda: clock[0],
    )
    log.append(make_entry(0))  # first entry: timed checkpoint (none before)
    log.append(make_entry(1))
    assert log.checkpoint_if_due() is None  # entry 1 arrived but 5 s have not passed
    clock[0] += 5000
    timer = log.checkpoint_if_due()
    assert timer is not None
    assert timer.tree_size == 2
    clock[0] += 5000
    assert log.checkpoint_if_due() is None  # nothing new
    log.append(make_entry(3))
    clock[0] += 5000
    appended = log.append(make_entry(2))
    assert appended.checkpoint is not None
    assert appended.checkpoint.tree_size == 4


def test_inclusion_and_consistency_proofs_verify(filled: AuditLog) -> None:
    cp = filled.latest_checkpoint()
    with filled.engine.connect() as conn:
        exchange_id = conn.execute(
            text("SELECT exchange_id FROM audit_entries WHERE idx = 33")
        ).scalar_one()
    proof = filled.inclusion_proof(exchange_id=exchange_id)
    assert proof["tree_size"] == cp.tree_size
    hashes = [bytes.fromhex(h) for h in proof["proof"]]  # type: ignore[attr-defined]
    leaf = bytes.fromhex(str(proof["leaf_hash"]))
    assert merkle.verify_inclusion(33, cp.tree_size, leaf, hashes, cp.root)
    old = filled.inclusion_proof(index=3, tree_size=11)
    assert old["leaf_index"] == 3
    consistency = filled.consistency_proof(11, cp.tree_size)
    with filled.engine.connect() as conn:
        root11 = conn.execute(
            text("SELECT root FROM audit_checkpoints WHERE tree_size = 11")
        ).scalar_one()
    assert merkle.verify_consistency(
        11,
        cp.tree_size,
        bytes(root11),
        cp.root,
        [bytes.fromhex(h) for h in consistency["proof"]],  # type: ignore[attr-defined]
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"index": 55, "tree_size": 51}, ProofError, "fetch a newer checkpoint"),
        ({"index": 3, "tree_size": 999}, ProofError, "log size"),
        ({"exchange_id": "no-such-exchange"}, AuditNotFoundError, "not in the audit log"),
        ({}, ProofError, "name an exchange"),
    ],
    ids=["leaf-after-tree", "tree-beyond-log", "unknown-exchange", "nothing-named"],
)
def test_impossible_proofs_are_refused(
    filled: AuditLog, kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        filled.inclusion_proof(**kwargs)  # type: ignore[arg-type]


def test_consistency_proof_refuses_backwards_sizes(filled: AuditLog) -> None:
    with pytest.raises(ProofError, match="no consistency proof"):
        filled.consistency_proof(30, 20)


def test_receipt_checks_offline_and_detects_forgery(filled: AuditLog) -> None:
    appended = filled.append(make_entry(99))
    pending = filled.receipt(appended.exchange_id)
    with pytest.raises(ReceiptError, match="no checkpoint yet"):
        check_receipt(pending, filled.signer.public_key)
    filled.checkpoint_now()
    receipt = filled.receipt(appended.exchange_id)
    result = check_receipt(
        receipt,
        filled.signer.public_key,
        origin=filled.signer.origin,
        record={"child_protection_plan": {"status": "active"}},
    )
    assert result.leaf_index == appended.leaf_index
    assert result.record_checked
    with pytest.raises(ReceiptError, match="not the one released"):
        check_receipt(receipt, filled.signer.public_key, record={"other": 1})
    forged = dict(receipt, leaf_index=3)
    with pytest.raises(ReceiptError, match="another index"):
        check_receipt(forged, filled.signer.public_key)
    stranger = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(ReceiptError, match="does not verify"):
        check_receipt(receipt, stranger)


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
    log.append(make_entry(1, party_id="west-calder-police", client_id="wcp-mash"))
    other = log.append(
        make_entry(2, party_id="west-calder-police", client_id="wcp-mash", agreement=None)
    ).exchange_id
    hospital = Scope("R9Z", ("ISA-SAFEGUARDING-CHILDREN",))
    page = search(log.engine, SearchFilters(), scope=hospital)
    assert [i["leaf_index"] for i in page.items] == [1, 0]  # own entry + shared agreement
    assert get_exchange(log.engine, own, scope=hospital)["leaf_index"] == 0
    with pytest.raises(AuditNotFoundError):
        get_exchange(log.engine, other, scope=hospital)
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
