"""Checking an exchange's inclusion proof against the latest signed checkpoint, server-side.

The checkpoint's Ed25519 signature is checked with the log's public key, the leaf hash is
recomputed from the stored leaf bytes, and the RFC 9162 proof must lead from it to the signed
root. The page shows each step's outcome; the browser repeats the hash walk with WebCrypto.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from broker.audit import store
from broker.audit.checkpoint import Checkpoint, open_checkpoint
from broker.audit.errors import AuditError
from broker.audit.log import AuditLog
from broker.core import merkle


@dataclass(frozen=True)
class ProofCheck:
    ok: bool
    message: str
    leaf_index: int | None = None
    tree_size: int | None = None
    leaf_hash: str | None = None
    root_hash: str | None = None
    proof: tuple[str, ...] = ()
    checkpoint: Checkpoint | None = None
    signature_ok: bool = False


def check_inclusion(log: AuditLog, exchange_id: str) -> ProofCheck:
    """Prove ``exchange_id`` is in the log as of the newest checkpoint (signed now if one is due
    by the log's checkpoint policy, or if the newest does not cover the entry yet). Never raises
    for a failed check: the result says what failed."""
    try:
        with store.reading(log.engine) as conn:
            row = store.entry_row(conn, exchange_id)
        leaf_index = int(row.idx)
        leaf_hash = merkle.leaf_hash(bytes(row.leaf))
        log.checkpoint_if_due()  # a fresher tree head when the log's own policy says one is due
        checkpoint = log.latest_checkpoint()
        if checkpoint.tree_size <= leaf_index:
            checkpoint = log.checkpoint_now()
        proof = log.inclusion_proof(exchange_id=exchange_id, tree_size=checkpoint.tree_size)
    except AuditError as e:
        return ProofCheck(False, f"no proof could be made: {e.detail}")
    hashes = tuple(str(h) for h in proof["proof"])  # type: ignore[attr-defined]
    found = ProofCheck(
        False,
        "",
        leaf_index=leaf_index,
        tree_size=checkpoint.tree_size,
        leaf_hash=leaf_hash.hex(),
        root_hash=checkpoint.root.hex(),
        proof=hashes,
        checkpoint=checkpoint,
    )
    try:
        opened = open_checkpoint(checkpoint.note, log.signer.public_key, log.signer.origin)
    except AuditError as e:
        return replace(found, message=f"the checkpoint signature does not verify: {e.detail}")
    good = merkle.verify_inclusion(
        leaf_index, opened.tree_size, leaf_hash, [bytes.fromhex(h) for h in hashes], opened.root
    )
    if not good:
        return replace(
            found, signature_ok=True, message="the inclusion proof does not lead to the signed root"
        )
    return replace(
        found,
        ok=True,
        signature_ok=True,
        message=f"entry {leaf_index} is in the signed tree of {opened.tree_size} entries",
    )
