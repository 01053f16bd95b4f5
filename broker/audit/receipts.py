"""Receipts: proof for one exchange that it is in the log, checkable offline with the log key.

A receipt (JSON) holds the leaf index, the leaf bytes and their hash, the released record's salt,
and either a signed checkpoint that covers the entry with the inclusion proof into it, or a
``pending`` promise saying where to fetch them once the next checkpoint is made.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
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
    """A receipt that verified: the entry is at ``leaf_index`` of the signed tree ``tree_size``
    of log ``origin``. ``leaf_checked``: the receipt held the leaf, so its exchange id and index
    were checked against the entry itself (an exchange answer's receipt carries only its hash)."""

    exchange_id: str
    leaf_index: int
    tree_size: int
    record_checked: bool
    origin: str = ""
    leaf_hash: str = ""
    leaf_checked: bool = True

    def to_json(self) -> dict[str, object]:
        return {
            "ok": True,
            "exchange_id": self.exchange_id,
            "leaf_index": self.leaf_index,
            "leaf_hash": self.leaf_hash,
            "tree_size": self.tree_size,
            "origin": self.origin,
            "leaf_checked": self.leaf_checked,
            "record_checked": self.record_checked,
        }


class ReceiptPending(ReceiptError):
    """The receipt is a promise: no checkpoint covers the entry yet."""

    title = "Receipt pending"


def _field(receipt: Mapping[str, Any], name: str, kind: type) -> Any:
    value = receipt.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ReceiptError(f"receipt field {name!r} is missing or not a {kind.__name__}")
    return value


def _pending_message(receipt: Mapping[str, Any], exchange_id: str) -> str:
    pending = receipt.get("pending")
    url = f"/v1/audit/proof/inclusion?exchange_id={exchange_id}"
    checkpoint_url = "/v1/audit/checkpoint"
    if isinstance(pending, Mapping):
        url = str(pending.get("inclusion_proof_url") or url)
        checkpoint_url = str(pending.get("checkpoint_url") or checkpoint_url)
    return (
        "the receipt has no checkpoint yet (pending): fetch the inclusion proof from"
        f" {url} and the signed checkpoint of that tree size from {checkpoint_url},"
        " then check again with them"
    )


def _leaf_body(
    receipt: Mapping[str, Any], index: int, exchange_id: str, leaf_hash: bytes
) -> dict[str, JsonValue] | None:
    """The entry's body when the receipt holds the leaf (checked against the hash), else None."""
    if receipt.get("leaf") is None:
        return None
    try:
        leaf = base64.b64decode(_field(receipt, "leaf", str), validate=True)
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
    return body


def check_receipt(
    receipt: Mapping[str, Any],
    public: Ed25519PublicKey,
    *,
    origin: str | None = None,
    record: JsonValue | None = None,
    checkpoint: str | None = None,
    inclusion_proof: Sequence[str] | None = None,
    proof_tree_size: int | None = None,
) -> ReceiptCheck:
    """Verify a receipt offline. Pure. With ``record``, also check the released record's digest.

    Takes both forms: the ``receipt`` of a ``POST /v1/exchanges`` answer (leaf hash, and the
    checkpoint with the inclusion proof when the same commit made one) and the complete one of
    ``AuditLog.receipt`` (with the leaf). ``checkpoint`` (a signed note) and ``inclusion_proof``
    (hex hashes, as ``GET /v1/audit/proof/inclusion`` gives them, for a tree of
    ``proof_tree_size``) complete a pending receipt.

    Raises :class:`ReceiptError` naming what failed (:class:`ReceiptPending` for a promise).
    """
    index = _field(receipt, "leaf_index", int)
    exchange_id = _field(receipt, "exchange_id", str)
    note = checkpoint if checkpoint is not None else receipt.get("checkpoint")
    hashes = inclusion_proof if inclusion_proof is not None else receipt.get("inclusion_proof")
    try:
        leaf_hash = bytes.fromhex(_field(receipt, "leaf_hash", str))
        if not isinstance(hashes, list | tuple | None):
            raise ValueError("the inclusion proof is not a list of hashes")
        proof = [bytes.fromhex(h) for h in hashes or []]
    except (ValueError, TypeError) as e:
        raise ReceiptError(f"receipt is malformed: {e}") from e
    if len(leaf_hash) != merkle.HASH_SIZE:
        raise ReceiptError("the receipt's leaf hash is not 32 bytes")
    body = _leaf_body(receipt, index, exchange_id, leaf_hash)
    if not isinstance(note, str) or hashes is None:
        raise ReceiptPending(_pending_message(receipt, exchange_id))
    try:
        cp = open_checkpoint(note, public, origin)
    except CheckpointError as e:
        raise ReceiptError(f"the receipt's checkpoint does not verify: {e.detail}") from e
    if proof_tree_size is not None and proof_tree_size != cp.tree_size:
        raise ReceiptError(
            f"the inclusion proof is for tree size {proof_tree_size}, the checkpoint for"
            f" {cp.tree_size}: fetch the proof with tree_size={cp.tree_size}"
        )
    if not merkle.verify_inclusion(index, cp.tree_size, leaf_hash, proof, cp.root):
        raise ReceiptError(f"the inclusion proof does not lead to the root of tree {cp.tree_size}")
    record_checked = False
    if record is not None:
        if body is None:
            raise ReceiptError(
                "the record's digest is in the entry's leaf, which an exchange answer's receipt"
                " does not hold (only its hash): check the record against the entry's"
                f" released_digest (GET /v1/exchanges/{exchange_id})"
            )
        digest = body.get("released_digest")
        salt_text = receipt.get("record_salt")
        if not isinstance(digest, str) or not isinstance(salt_text, str):
            raise ReceiptError("the entry has no released-record digest or the salt is missing")
        if not check_released_record(record, base64.b64decode(salt_text), digest):
            raise ReceiptError("the record is not the one released under this entry")
        record_checked = True
    return ReceiptCheck(
        exchange_id,
        index,
        cp.tree_size,
        record_checked,
        origin=cp.origin,
        leaf_hash=leaf_hash.hex(),
        leaf_checked=body is not None,
    )
