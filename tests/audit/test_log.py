"""Appending, checkpoints, proofs and receipts on a stored log."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, text

from broker.api.exchanges import receipt_json
from broker.audit.checkpoint import open_checkpoint
from broker.audit.entry import (
    check_released_record,
    digest_released_record,
    parse_leaf,
)
from broker.audit.errors import (
    AuditEntryError,
    AuditNotFoundError,
    AuditUnavailableError,
    ProofError,
    ReceiptError,
)
from broker.audit.log import AuditLog, LogSigner
from broker.audit.receipts import check_receipt
from broker.audit.store import CheckpointPolicy
from broker.audit.verify import verify_log
from broker.core import merkle
from broker.core.errors import Unavailable
from tests.audit.conftest import make_entry


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
