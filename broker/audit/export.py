"""Evidence export for auditors: every entry in a time range with what checks it offline.

Each entry carries its leaf bytes (base64), leaf hash, personal values and salts still held, the
record salt, and an inclusion proof into one signed checkpoint, which is written first (JSON
Lines: a ``checkpoint`` line, then ``entry`` lines) or in every row (CSV). Anyone holding the log's
public key can then check each entry alone: hash the leaf, verify the proof to the checkpoint's
root, verify the checkpoint's signature, open the commitments with the salts.
"""

from __future__ import annotations

import base64
import csv
import json
from collections.abc import Iterator
from typing import Any, Literal, TextIO

from sqlalchemy import select

from broker.audit import store
from broker.audit.entry import PERSONAL_FIELDS, outcome_of, parse_leaf
from broker.audit.log import AuditLog
from broker.audit.tables import audit_entries
from broker.core import merkle

Format = Literal["jsonl", "csv"]
CSV_COLUMNS = (
    "leaf_index",
    "exchange_id",
    "time",
    "kind",
    "decision",
    "agreement_id",
    "party_id",
    "client_id",
    "dataset",
    "break_glass",
    "leaf_hash",
    "leaf_base64",
    "personal_json",
    "record_salt_base64",
    "tree_size",
    "inclusion_proof",
    "checkpoint_note",
)


def _entries(
    log: AuditLog, from_ms: int | None, to_ms: int | None, batch: int = 1000
) -> Iterator[tuple[dict[str, Any], str]]:
    checkpoint = log.checkpoint_now()  # covers everything exported
    c = audit_entries.c
    last = -1
    with store.reading(log.engine) as conn:
        read = store.node_reader(conn)
        while True:
            query = select(audit_entries).where(c.idx > last, c.idx < checkpoint.tree_size)
            if from_ms is not None:
                query = query.where(c.at_ms >= from_ms)
            if to_ms is not None:
                query = query.where(c.at_ms < to_ms)
            rows = conn.execute(query.order_by(c.idx).limit(batch)).all()
            if not rows:
                return
            for row in rows:
                last = int(row.idx)
                leaf = bytes(row.leaf)
                _, body = parse_leaf(leaf)
                personal = {
                    name: {
                        "value": getattr(row, name),
                        "salt": store.b64(getattr(row, name + "_salt")),
                    }
                    for name in PERSONAL_FIELDS
                    if getattr(row, name) is not None
                }
                proof = merkle.inclusion_proof(last, checkpoint.tree_size, read)
                yield (
                    {
                        "type": "entry",
                        "leaf_index": last,
                        "exchange_id": row.exchange_id,
                        "leaf_hash": merkle.leaf_hash(leaf).hex(),
                        "leaf_base64": base64.b64encode(leaf).decode(),
                        "entry": body,
                        "personal": personal,
                        "record_salt_base64": store.b64(
                            None if row.record_salt is None else bytes(row.record_salt)
                        ),
                        "tree_size": checkpoint.tree_size,
                        "inclusion_proof": [h.hex() for h in proof],
                    },
                    checkpoint.note,
                )


def export(
    log: AuditLog, out: TextIO, *, fmt: Format, from_ms: int | None = None, to_ms: int | None = None
) -> int:
    """Write the entries with ``from_ms <= time < to_ms`` to ``out``; returns how many."""
    count = 0
    if fmt == "jsonl":
        wrote_checkpoint = False
        for item, note in _entries(log, from_ms, to_ms):
            if not wrote_checkpoint:
                line = {
                    "type": "checkpoint",
                    "note": note,
                    "verifier_key": log.signer.verifier_key(),
                }
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
                wrote_checkpoint = True
            out.write(json.dumps(item, ensure_ascii=False, sort_keys=True) + "\n")
            count += 1
        return count
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for item, note in _entries(log, from_ms, to_ms):
        body = item["entry"]
        agreement = body.get("agreement") or {}
        writer.writerow(
            [
                item["leaf_index"],
                item["exchange_id"],
                body.get("time"),
                body.get("kind"),
                outcome_of(body),  # not_found, also where an older leaf says allow
                agreement.get("id"),
                body.get("party_id"),
                body.get("client_id"),
                body.get("dataset"),
                body.get("break_glass"),
                item["leaf_hash"],
                item["leaf_base64"],
                json.dumps(item["personal"], ensure_ascii=False, sort_keys=True),
                item["record_salt_base64"] or "",
                item["tree_size"],
                " ".join(item["inclusion_proof"]),
                note,
            ]
        )
        count += 1
    return count
