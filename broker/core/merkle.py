"""RFC 9162 (Certificate Transparency 2.0) Merkle tree hashing and proofs. Pure: no I/O.

Hashing (RFC 9162 §2.1.1)::

    MTH({})      = SHA-256()
    leaf hash    = SHA-256(0x00 || leaf bytes)
    node hash    = SHA-256(0x01 || left || right)
    MTH(D[n])    = node(MTH(D[0:k]), MTH(D[k:n]))  with k the largest power of two < n

Storage model. The log stores the hash of every *perfect* subtree once it is complete: the node at
``(level, index)`` covers leaves ``[index * 2**level, (index + 1) * 2**level)``. Nodes are keyed by
their post-order position (:func:`node_position`), the order in which an append-only log completes
them, so a verifier can stream them beside the leaves. Any subtree the RFC's proofs need is either
perfect or the right edge of a tree, which is the fold of O(log n) perfect nodes, so a proof is one
batched read of O(log n) nodes through a :data:`NodeReader` and never a rehash of the log.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

#: Reads perfect-subtree hashes by ``(level, index)``; returns them in the same order.
#: Raises whatever the storage raises when a node is missing (callers translate it).
NodeReader = Callable[[Sequence[tuple[int, int]]], Sequence[bytes]]


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def largest_power_of_two_below(n: int) -> int:
    """The largest power of two strictly less than ``n`` (``n`` >= 2)."""
    if n < 2:
        raise ValueError("n must be at least 2")
    return 1 << ((n - 1).bit_length() - 1)


def node_position(level: int, index: int) -> int:
    """Post-order position of the perfect node ``(level, index)`` in an append-only log.

    Leaf ``j`` sits at ``2j - popcount(j)``; the nodes completed by appending leaf ``j`` follow it,
    lowest level first. Positions are dense: 0, 1, 2, ... with no gaps.
    """
    last_leaf = ((index + 1) << level) - 1
    return 2 * last_leaf - last_leaf.bit_count() + level


def nodes_for_leaf_count(size: int) -> int:
    """How many perfect nodes a log of ``size`` leaves has stored: the position of leaf ``size``."""
    return 2 * size - size.bit_count()


def perfect_subtrees(start: int, end: int) -> list[tuple[int, int]]:
    """The perfect nodes ``(level, index)`` whose concatenation is ``[start, end)``, left to right.

    ``start`` must be aligned to a power of two at least ``end - start`` (true of every range the
    RFC's recursion produces), so the decomposition follows the binary digits of the size.
    """
    out: list[tuple[int, int]] = []
    size = end - start
    pos = start
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            out.append((level, pos >> level))
            pos += 1 << level
    return out


def fold_right(hashes: Sequence[bytes]) -> bytes:
    """MTH of a range given its perfect subtrees left to right (largest first)."""
    result = hashes[-1]
    for h in reversed(hashes[:-1]):
        result = node_hash(h, result)
    return result


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The subtrees ``[a, b)`` whose hashes form PATH(index, D[size]), leaf end first."""
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = largest_power_of_two_below(hi - lo)
        if index - lo < k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo = lo + k
    ranges.reverse()
    return ranges


def _consistency_ranges(old: int, new: int) -> list[tuple[int, int]]:
    """The subtrees whose hashes form PROOF(old, D[new]) (RFC 9162 §2.1.4.1), in order."""
    ranges: list[tuple[int, int]] = []
    lo, hi, m = 0, new, old
    complete = True
    while True:
        n = hi - lo
        if m == n:
            if not complete:
                ranges.append((lo, hi))
            break
        k = largest_power_of_two_below(n)
        if m <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo = lo + k
            m -= k
            complete = False
    ranges.reverse()
    return ranges


def _hashes_for_ranges(ranges: Sequence[tuple[int, int]], read: NodeReader) -> list[bytes]:
    parts = [perfect_subtrees(a, b) for a, b in ranges]
    wanted = sorted({node for part in parts for node in part})
    found = dict(zip(wanted, read(wanted), strict=True))
    return [fold_right([found[node] for node in part]) for part in parts]


def inclusion_proof(index: int, size: int, read: NodeReader) -> list[bytes]:
    """PATH(index, D[size]) of RFC 9162 §2.1.3.1, read from stored perfect nodes.

    Raises ``ValueError`` unless ``0 <= index < size``.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    return _hashes_for_ranges(_inclusion_ranges(index, size), read)


def consistency_proof(old: int, new: int, read: NodeReader) -> list[bytes]:
    """PROOF(old, D[new]) of RFC 9162 §2.1.4.1; empty when ``old`` is 0 or equals ``new``.

    Raises ``ValueError`` unless ``0 <= old <= new``.
    """
    if not 0 <= old <= new:
        raise ValueError(f"no consistency proof from size {old} to size {new}")
    if old in (0, new):
        return []
    return _hashes_for_ranges(_consistency_ranges(old, new), read)


def root_hash(size: int, read: NodeReader) -> bytes:
    """MTH(D[size]) from stored perfect nodes (O(log size) reads)."""
    if size == 0:
        return EMPTY_ROOT
    nodes = perfect_subtrees(0, size)
    return fold_right(list(read(nodes)))


def _climb_right_edge(fn: int, sn: int) -> tuple[int, int]:
    """The step both proof checks of RFC 9162 (2.1.3.2, 2.1.4.2) take after hashing a sibling
    in from the left: shift ``fn`` and ``sn`` right until ``fn``'s lowest bit is set or it is 0."""
    while True:
        fn >>= 1
        sn >>= 1
        if fn & 1 or fn == 0:
            return fn, sn


def root_from_inclusion_proof(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes]
) -> bytes | None:
    """RFC 9162 §2.1.3.2: the root a valid proof leads to, or None when the proof is malformed."""
    if index >= size or index < 0:
        return None
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if len(p) != HASH_SIZE or sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                fn, sn = _climb_right_edge(fn, sn)
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        return None
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> bool:
    """True when ``proof`` puts leaf hash ``leaf`` at ``index`` in the tree ``(size, root)``."""
    if len(leaf) != HASH_SIZE:
        return False
    got = root_from_inclusion_proof(index, size, leaf, proof)
    return got is not None and got == root


def verify_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: True when ``proof`` shows ``(old, old_root)`` is a prefix of ``new``."""
    if old < 0 or new < old:
        return False
    if old == new:
        return not proof and old_root == new_root
    if old == 0:
        return not proof
    if not proof or any(len(p) != HASH_SIZE for p in proof):
        return False
    path = list(proof)
    if old & (old - 1) == 0:  # old is an exact power of two
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                fn, sn = _climb_right_edge(fn, sn)
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


@dataclass
class CompactRange:
    """The perfect subtrees covering ``[0, size)``: everything needed to append and to get a root.

    ``hashes`` holds one hash per set bit of ``size``, largest subtree first.
    """

    size: int
    hashes: list[bytes]

    @classmethod
    def empty(cls) -> CompactRange:
        return cls(0, [])

    @classmethod
    def from_bytes(cls, size: int, packed: bytes) -> CompactRange:
        """Rebuild from :meth:`to_bytes`. Raises ``ValueError`` when the length does not fit."""
        if len(packed) != HASH_SIZE * size.bit_count():
            raise ValueError("compact range does not match its size")
        hashes = [packed[i : i + HASH_SIZE] for i in range(0, len(packed), HASH_SIZE)]
        return cls(size, hashes)

    def to_bytes(self) -> bytes:
        return b"".join(self.hashes)

    def append(self, leaf: bytes) -> list[tuple[int, bytes]]:
        """Add a leaf hash; returns ``(position, hash)`` of it and of every node it completes."""
        index = self.size
        position = 2 * index - index.bit_count()
        out = [(position, leaf)]
        carry = leaf
        while index & 1:
            carry = node_hash(self.hashes.pop(), carry)
            index >>= 1
            position += 1
            out.append((position, carry))
        self.hashes.append(carry)
        self.size += 1
        return out

    def root(self) -> bytes:
        """MTH(D[size])."""
        if not self.hashes:
            return EMPTY_ROOT
        return fold_right(self.hashes)
