"""Every way of tampering with a stored log is caught by verify, naming the first bad entry."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Connection, Engine, text

from broker.audit.checkpoint import open_checkpoint
from broker.audit.log import AuditLog
from broker.audit.verify import VerifyReport, verify_log


def run_verify(log: AuditLog, against: list[tuple[str, str]] | None = None) -> VerifyReport:
    return verify_log(
        log.engine, log.signer.public_key, origin=log.signer.origin, against=against or []
    )


def sql(engine: Engine, statement: str, **params: object) -> None:
    with engine.begin() as conn:
        conn.execute(text(statement), params)


def test_an_untouched_log_verifies(filled: AuditLog) -> None:
    report = run_verify(filled)
    assert report.ok, report.problems
    assert report.entries_checked == 57
    assert report.checkpoints_checked == 6  # sizes 1 (the first, timed), 10, 20, 30, 40, 50


def _edit_leaf_byte(conn: Connection) -> None:
    leaf = conn.execute(text("SELECT leaf FROM audit_entries WHERE idx = 23")).scalar_one()
    edited = bytes(leaf).replace(b'"decision":"allow"', b'"decision":"deny!"')
    assert edited != bytes(leaf)
    conn.execute(text("UPDATE audit_entries SET leaf = :l WHERE idx = 23"), {"l": edited})


def _swap_rows(conn: Connection) -> None:
    select = "SELECT leaf, exchange_id, at_ms FROM audit_entries WHERE idx = :i"
    a = conn.execute(text(select), {"i": 23}).one()
    b = conn.execute(text(select), {"i": 24}).one()
    conn.execute(text("UPDATE audit_entries SET exchange_id = 'tmp' WHERE idx = 23"))
    for idx, row in ((24, a), (23, b)):
        conn.execute(
            text(
                "UPDATE audit_entries SET leaf = :leaf, exchange_id = :exchange_id, at_ms = :at_ms"
                " WHERE idx = :idx"
            ),
            {"leaf": row.leaf, "exchange_id": row.exchange_id, "at_ms": row.at_ms, "idx": idx},
        )


def _insert_row(conn: Connection) -> None:
    # Shift entries 23.. up by one and put a copy of entry 10 at 23.
    rows = conn.execute(text("SELECT idx FROM audit_entries WHERE idx >= 23 ORDER BY idx DESC"))
    for (idx,) in rows.all():
        conn.execute(text("UPDATE audit_entries SET idx = idx + 1 WHERE idx = :i"), {"i": idx})
    conn.execute(
        text(
            "INSERT INTO audit_entries SELECT 23, 'inserted-exchange', kind, at_ms, agreement_id,"
            " party_id, client_id, dataset, decision, break_glass, subject_pseudonym,"
            " subject_pseudonym_salt, user_id, user_id_salt, justification, justification_salt,"
            " case_reference, case_reference_salt, record_salt, leaf FROM audit_entries"
            " WHERE idx = 10"
        )
    )


def _rewrite_leaf_and_tree(conn: Connection) -> None:
    """A careful attacker: edits entry 23 and recomputes its leaf hash and all tree nodes."""
    from broker.audit.entry import parse_leaf
    from broker.core import merkle

    leaf = bytes(conn.execute(text("SELECT leaf FROM audit_entries WHERE idx = 23")).scalar_one())
    edited = leaf.replace(b'"purpose":"child-protection-check"', b'"purpose":"curiosity-check"')
    conn.execute(text("UPDATE audit_entries SET leaf = :l WHERE idx = 23"), {"l": edited})
    leaves = [
        bytes(r[0]) for r in conn.execute(text("SELECT leaf FROM audit_entries ORDER BY idx"))
    ]
    compact = merkle.CompactRange.empty()
    conn.execute(text("DELETE FROM audit_nodes"))
    for leaf in leaves:
        parse_leaf(leaf)
        for pos, h in compact.append(merkle.leaf_hash(leaf)):
            conn.execute(text("INSERT INTO audit_nodes VALUES (:p, :h)"), {"p": pos, "h": h})
    conn.execute(text("UPDATE audit_head SET compact = :c"), {"c": compact.to_bytes()})


TAMPERING: dict[str, tuple[Callable[[Connection], object], int, str]] = {
    "edited-leaf-field": (_edit_leaf_byte, 23, "leaf"),
    "edited-search-column-party": (
        lambda c: c.execute(text("UPDATE audit_entries SET party_id = 'hidden' WHERE idx = 31")),
        31,
        "party_id",
    ),
    "edited-search-column-decision": (
        lambda c: c.execute(text("UPDATE audit_entries SET decision = 'allow' WHERE idx = 30")),
        30,
        "decision",
    ),
    "edited-search-column-time": (
        lambda c: c.execute(text("UPDATE audit_entries SET at_ms = at_ms + 1 WHERE idx = 5")),
        5,
        "at_ms",
    ),
    "break-glass-hidden": (
        lambda c: c.execute(text("UPDATE audit_entries SET break_glass = false WHERE idx = 40")),
        40,
        "break_glass",
    ),
    "subject-pseudonym-changed": (
        lambda c: c.execute(
            text("UPDATE audit_entries SET subject_pseudonym = 'ab' WHERE idx = 12")
        ),
        12,
        "subject_pseudonym",
    ),
    "user-id-changed": (
        lambda c: c.execute(text("UPDATE audit_entries SET user_id = 'someone' WHERE idx = 3")),
        3,
        "user_id",
    ),
    "personal-values-removed-without-redaction": (
        lambda c: c.execute(
            text(
                "UPDATE audit_entries SET case_reference = NULL, case_reference_salt = NULL"
                " WHERE idx = 8"
            )
        ),
        8,
        "no logged redaction",
    ),
    "deleted-row": (
        lambda c: c.execute(text("DELETE FROM audit_entries WHERE idx = 17")),
        17,
        "missing",
    ),
    "inserted-row": (_insert_row, 23, "says it is entry"),
    "reordered-rows": (_swap_rows, 23, "says it is entry"),
    "tail-truncated-after-checkpoint": (
        lambda c: (
            c.execute(text("DELETE FROM audit_entries WHERE idx >= 45")),
            c.execute(text("DELETE FROM audit_nodes WHERE pos >= 88")),
        ),
        45,
        "truncated",
    ),
    "edited-tree-node": (
        lambda c: c.execute(
            text("UPDATE audit_nodes SET hash = :h WHERE pos = 44"), {"h": b"\0" * 32}
        ),
        23,
        "differs",
    ),
    # Entry 23 is edited and the tree recomputed: the checkpoint at 31 no longer matches and the
    # first entry it does not vouch for is 21 (checkpoint 21 still matches).
    "leaf-and-whole-tree-rewritten": (_rewrite_leaf_and_tree, 21, "21..30 was changed"),
}


@pytest.mark.parametrize(("tamper", "first_bad", "says"), TAMPERING.values(), ids=TAMPERING.keys())
def test_tampering_is_detected_and_names_the_entry(
    filled: AuditLog, tamper: Callable[[Connection], object], first_bad: int, says: str
) -> None:
    with filled.engine.begin() as conn:
        tamper(conn)
    report = run_verify(filled)
    assert not report.ok
    assert report.first_bad_entry == first_bad, report.problems
    assert any(says in p.message for p in report.problems), report.problems


def test_truncation_with_checkpoints_and_head_rewritten_is_caught_by_a_partys_checkpoint(
    filled: AuditLog,
) -> None:
    kept = filled.latest_checkpoint()  # a party fetched this one (size 50)
    with filled.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_entries WHERE idx >= 45"))
        conn.execute(text("DELETE FROM audit_nodes WHERE pos >= 88"))
        conn.execute(text("DELETE FROM audit_checkpoints WHERE tree_size > 40"))
        conn.execute(text("UPDATE audit_head SET size = 45, checkpoint_size = 40"))
    # Without the party's checkpoint the rewrite is still caught by the head's compact range
    # and checkpoint time; with it, the missing tail is named.
    report = run_verify(filled, against=[("party-copy.txt", kept.note)])
    assert not report.ok
    assert report.first_bad_entry == 45
    assert any("tail truncated" in p.message for p in report.problems)


def test_a_forged_checkpoint_signature_is_reported(filled: AuditLog) -> None:
    with filled.engine.begin() as conn:
        note = conn.execute(
            text("SELECT note FROM audit_checkpoints WHERE tree_size = 21")
        ).scalar_one()
        forged = note.replace("\n21\n", "\n22\n")
        conn.execute(
            text("UPDATE audit_checkpoints SET note = :n WHERE tree_size = 21"), {"n": forged}
        )
    report = run_verify(filled)
    assert not report.ok
    assert any("no valid signature" in p.message for p in report.problems)


def test_a_party_checkpoint_from_another_history_is_reported(
    filled: AuditLog, log: AuditLog
) -> None:
    good = filled.latest_checkpoint()
    other = filled.signer.sign(good.tree_size, b"\x11" * 32, good.time_ms)
    assert open_checkpoint(other.note, filled.signer.public_key).tree_size == good.tree_size
    report = run_verify(filled, against=[("police-copy.txt", other.note)])
    assert not report.ok
    assert any("police-copy.txt" in p.message for p in report.problems)
