"""Receipts: proof for one exchange that it is in the log, checkable offline with the log key.

A receipt (JSON) holds the leaf index, the leaf bytes and their hash, the released record's salt,
and either a signed checkpoint that covers the entry with the inclusion proof into it, or a
``pending`` promise saying where to fetch them once the next checkpoint is made.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine

from broker.audit import store
from broker.audit.checkpoint import open_checkpoint
from broker.audit.entry import JsonValue, check_released_record, parse_leaf
from broker.audit.errors import CheckpointError, ReceiptError
from broker.core import merkle

RECEIPT_VERSION = 1


def build_receipt(engine: Engine, exchange_id: str) -> dict[str, object]:
    """The receipt for ``exchange_id``, complete when a checkpoint covers it.

    Raises :class:`AuditNotFoundError`.
    """
    with store.reading(engine) as conn:
        row = store.entry_row(conn, exchange_id)
        index = int(row.idx)
        leaf = bytes(row.leaf)
        cp = store.covering_checkpoint(conn, index)
        proof = (
            None
            if cp is None
            else merkle.inclusion_proof(index, cp.tree_size, store.node_reader(conn))
        )
    return {
        "version": RECEIPT_VERSION,
        "exchange_id": exchange_id,
        "leaf_index": index,
        "leaf_hash": merkle.leaf_hash(leaf).hex(),
        "leaf": base64.b64encode(leaf).decode(),
        "record_salt": store.b64(None if row.record_salt is None else bytes(row.record_salt)),
        "checkpoint": None if cp is None else cp.note,
        "inclusion_proof": None if proof is None else [h.hex() for h in proof],
        "pending": None
        if cp is not None
        else {
            "checkpoint_url": "/v1/audit/checkpoint",
            "inclusion_proof_url": f"/v1/audit/proof/inclusion?exchange_id={exchange_id}",
        },
    }


@dataclass(frozen=True)
class ReceiptCheck:
    """A receipt that verified: the entry is at ``leaf_index`` of the signed tree ``tree_size``."""

    exchange_id: str
    leaf_index: int
    tree_size: int
    record_checked: bool

    def to_json(self) -> dict[str, object]:
        return {
            "ok": True,
            "exchange_id": self.exchange_id,
            "leaf_index": self.leaf_index,
            "tree_size": self.tree_size,
            "record_checked": self.record_checked,
        }


def _field(receipt: Mapping[str, Any], name: str, kind: type) -> Any:
    value = receipt.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ReceiptError(f"receipt field {name!r} is missing or not a {kind.__name__}")
    return value


def check_receipt(
    receipt: Mapping[str, Any],
    public: Ed25519PublicKey,
    *,
    origin: str | None = None,
    record: JsonValue | None = None,
) -> ReceiptCheck:
    """Verify a receipt offline. Pure. With ``record``, also check the released record's digest.

    Raises :class:`ReceiptError` naming what failed (including a receipt that is only a promise).
    """
    index = _field(receipt, "leaf_index", int)
    exchange_id = _field(receipt, "exchange_id", str)
    try:
        leaf_hash = bytes.fromhex(_field(receipt, "leaf_hash", str))
        leaf = base64.b64decode(_field(receipt, "leaf", str), validate=True)
        proof = [bytes.fromhex(h) for h in receipt.get("inclusion_proof") or []]
    except (ValueError, binascii.Error) as e:
        raise ReceiptError(f"receipt is malformed: {e}") from e
    if merkle.leaf_hash(leaf) != leaf_hash:
        raise ReceiptError("the leaf does not hash to the receipt's leaf hash")
    try:
        leaf_index, body = parse_leaf(leaf)
    except ValueError as e:
        raise ReceiptError(f"the leaf is not an audit entry: {e}") from e
    if leaf_index != index or body.get("exchange_id") != exchange_id:
        raise ReceiptError("the leaf names another index or exchange")
    note = receipt.get("checkpoint")
    if not isinstance(note, str) or receipt.get("inclusion_proof") is None:
        raise ReceiptError("the receipt has no checkpoint yet: fetch the inclusion proof")
    try:
        cp = open_checkpoint(note, public, origin)
    except CheckpointError as e:
        raise ReceiptError(f"the receipt's checkpoint does not verify: {e.detail}") from e
    if not merkle.verify_inclusion(index, cp.tree_size, leaf_hash, proof, cp.root):
        raise ReceiptError(f"the inclusion proof does not lead to the root of tree {cp.tree_size}")
    record_checked = False
    if record is not None:
        digest = body.get("released_digest")
        salt_text = receipt.get("record_salt")
        if not isinstance(digest, str) or not isinstance(salt_text, str):
            raise ReceiptError("the entry has no released-record digest or the salt is missing")
        if not check_released_record(record, base64.b64decode(salt_text), digest):
            raise ReceiptError("the record is not the one released under this entry")
        record_checked = True
    return ReceiptCheck(exchange_id, index, cp.tree_size, record_checked)
