"""RFC 9162 hashing and proofs, checked two independent ways.

1. Published RFC 6962 vectors from transparency-dev/merkle (Apache-2.0), copied as data:
   - leaves, perfect-node hashes and roots: ``testonly/constants.go``
     (https://github.com/transparency-dev/merkle/blob/main/testonly/constants.go)
   - inclusion and consistency proofs: ``proof/verify_test.go``
     (https://github.com/transparency-dev/merkle/blob/main/proof/verify_test.go)
2. A reference written here straight from the RFC 9162 §2.1 text (recursive MTH, PATH, PROOF and
   the two verification procedures), compared for every tree size 1..300 and a random sample of
   large trees.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from functools import lru_cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.core import merkle

# --- 1. published vectors (transparency-dev/merkle) -------------------------------------------

LEAF_INPUTS = [
    bytes.fromhex(h)
    for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
              "606162636465666768696a6b6c6d6e6f"]
]  # fmt: skip
NODE_HASHES = [
    [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    [
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    [
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    ["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# (leaf index 0-based, tree size, proof); the Go file numbers leaves from 1.
INCLUSION_VECTORS = [
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip
CONSISTENCY_VECTORS = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]  # fmt: skip


class StoredTree:
    """Appends leaves through CompactRange and keeps every node it emits, as the log store does."""

    def __init__(self, leaves: Sequence[bytes] = ()) -> None:
        self.range = merkle.CompactRange.empty()
        self.nodes: dict[int, bytes] = {}
        self.reads = 0
        for leaf in leaves:
            self.add(leaf)

    def add(self, data: bytes) -> None:
        for position, h in self.range.append(merkle.leaf_hash(data)):
            assert position not in self.nodes
            self.nodes[position] = h

    def read(self, wanted: Sequence[tuple[int, int]]) -> list[bytes]:
        self.reads += 1
        return [self.nodes[merkle.node_position(level, index)] for level, index in wanted]


def test_empty_root_is_sha256_of_nothing() -> None:
    assert merkle.EMPTY_ROOT.hex() == ROOTS[0]
    assert merkle.CompactRange.empty().root().hex() == ROOTS[0]


@pytest.mark.parametrize("size", range(1, 9), ids=lambda n: f"size-{n}")
def test_roots_match_published_vectors(size: int) -> None:
    tree = StoredTree(LEAF_INPUTS[:size])
    assert tree.range.root().hex() == ROOTS[size]
    assert merkle.root_hash(size, tree.read).hex() == ROOTS[size]


@pytest.mark.parametrize(
    ("level", "index"),
    [(level, index) for level, row in enumerate(NODE_HASHES) for index in range(len(row))],
    ids=lambda v: str(v),
)
def test_perfect_nodes_match_published_vectors(level: int, index: int) -> None:
    tree = StoredTree(LEAF_INPUTS)
    assert tree.read([(level, index)])[0].hex() == NODE_HASHES[level][index]


@pytest.mark.parametrize(
    ("index", "size", "proof"),
    INCLUSION_VECTORS,
    ids=[f"{i}-of-{n}" for i, n, _ in INCLUSION_VECTORS],
)
def test_inclusion_proofs_match_published_vectors(index: int, size: int, proof: list[str]) -> None:
    tree = StoredTree(LEAF_INPUTS[:size])
    got = merkle.inclusion_proof(index, size, tree.read)
    assert [h.hex() for h in got] == proof
    leaf = merkle.leaf_hash(LEAF_INPUTS[index])
    assert merkle.verify_inclusion(index, size, leaf, got, bytes.fromhex(ROOTS[size]))


@pytest.mark.parametrize(
    ("old", "new", "proof"),
    CONSISTENCY_VECTORS,
    ids=[f"{m}-to-{n}" for m, n, _ in CONSISTENCY_VECTORS],
)
def test_consistency_proofs_match_published_vectors(old: int, new: int, proof: list[str]) -> None:
    tree = StoredTree(LEAF_INPUTS[:new])
    got = merkle.consistency_proof(old, new, tree.read)
    assert [h.hex() for h in got] == proof
    assert merkle.verify_consistency(
        old, new, bytes.fromhex(ROOTS[old]), bytes.fromhex(ROOTS[new]), got
    )


# --- 2. a reference written from the RFC 9162 §2.1 text -----------------------------------------


def ref_k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


class Reference:
    """MTH, PATH and PROOF exactly as the RFC's recursive definitions, over a leaf list."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.leaves = list(leaves)
        self.mth = lru_cache(maxsize=None)(self._mth)

    def _mth(self, lo: int, hi: int) -> bytes:
        n = hi - lo
        if n == 0:
            return hashlib.sha256(b"").digest()
        if n == 1:
            return hashlib.sha256(b"\x00" + self.leaves[lo]).digest()
        k = ref_k(n)
        return hashlib.sha256(b"\x01" + self.mth(lo, lo + k) + self.mth(lo + k, hi)).digest()

    def path(self, m: int, lo: int, hi: int) -> list[bytes]:
        n = hi - lo
        if n == 1:
            return []
        k = ref_k(n)
        if m < k:
            return [*self.path(m, lo, lo + k), self.mth(lo + k, hi)]
        return [*self.path(m - k, lo + k, hi), self.mth(lo, lo + k)]

    def proof(self, m: int, n: int) -> list[bytes]:
        return self.subproof(m, 0, n, True)

    def subproof(self, m: int, lo: int, hi: int, b: bool) -> list[bytes]:
        n = hi - lo
        if m == n:
            return [] if b else [self.mth(lo, hi)]
        k = ref_k(n)
        if m <= k:
            return [*self.subproof(m, lo, lo + k, b), self.mth(lo + k, hi)]
        return [*self.subproof(m - k, lo + k, hi, False), self.mth(lo, lo + k)]


def ref_verify_inclusion(
    leaf_index: int, tree_size: int, h: bytes, path: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2, step by step."""
    if leaf_index >= tree_size:
        return False
    fn = leaf_index
    sn = tree_size - 1
    r = h
    for p in path:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            if fn % 2 == 0:
                while not (fn % 2 == 1 or fn == 0):
                    fn //= 2
                    sn //= 2
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn //= 2
        sn //= 2
    return sn == 0 and r == root


def ref_verify_consistency(
    first: int, second: int, first_hash: bytes, second_hash: bytes, path: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2, step by step (for 0 < first < second)."""
    if not path:
        return False
    path = list(path)
    if first & (first - 1) == 0:
        path = [first_hash, *path]
    fn = first - 1
    sn = second - 1
    while fn % 2 == 1:
        fn //= 2
        sn //= 2
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            fr = hashlib.sha256(b"\x01" + c + fr).digest()
            sr = hashlib.sha256(b"\x01" + c + sr).digest()
            if fn % 2 == 0:
                while not (fn % 2 == 1 or fn == 0):
                    fn //= 2
                    sn //= 2
        else:
            sr = hashlib.sha256(b"\x01" + sr + c).digest()
        fn //= 2
        sn //= 2
    return sn == 0 and fr == first_hash and sr == second_hash


LEAVES_300 = [i.to_bytes(2, "big") * (i % 5 + 1) for i in range(300)]
REFERENCE_300 = Reference(LEAVES_300)
TREE_300 = StoredTree(LEAVES_300)
SIZES = range(1, 301)


@pytest.mark.parametrize("size", SIZES, ids=lambda n: f"size-{n}")
def test_every_proof_agrees_with_the_rfc_reference(size: int) -> None:
    ref = REFERENCE_300
    read = TREE_300.read
    root = ref.mth(0, size)
    assert merkle.root_hash(size, read) == root
    for index in range(size):
        got = merkle.inclusion_proof(index, size, read)
        assert got == ref.path(index, 0, size)
        leaf = merkle.leaf_hash(LEAVES_300[index])
        assert ref_verify_inclusion(index, size, leaf, got, root)
        assert merkle.verify_inclusion(index, size, leaf, got, root)
        assert not merkle.verify_inclusion(index, size, leaf, got, ref.mth(0, size - 1))
    for old in range(1, size):
        got = merkle.consistency_proof(old, size, read)
        assert got == ref.proof(old, size)
        old_root = ref.mth(0, old)
        assert ref_verify_consistency(old, size, old_root, root, got)
        assert merkle.verify_consistency(old, size, old_root, root, got)
        assert not merkle.verify_consistency(old, size, root, old_root, got)


def test_random_large_trees_agree_with_the_rfc_reference() -> None:
    rng = random.Random(9162)
    leaves = [rng.randbytes(rng.randrange(0, 40)) for _ in range(5000)]
    ref = Reference(leaves)
    tree = StoredTree(leaves)
    for _ in range(400):
        size = rng.randrange(1, len(leaves) + 1)
        index = rng.randrange(size)
        old = rng.randrange(1, size + 1)
        root = ref.mth(0, size)
        path = merkle.inclusion_proof(index, size, tree.read)
        assert path == ref.path(index, 0, size)
        assert ref_verify_inclusion(index, size, merkle.leaf_hash(leaves[index]), path, root)
        proof = merkle.consistency_proof(old, size, tree.read)
        assert proof == ref.proof(old, size)
        if old < size:
            assert ref_verify_consistency(old, size, ref.mth(0, old), root, proof)
        assert merkle.verify_consistency(old, size, ref.mth(0, old), root, proof)


def test_a_proof_is_one_batched_read_of_logarithmic_size() -> None:
    tree = StoredTree(LEAVES_300)
    wanted: list[int] = []

    def counting(nodes: Sequence[tuple[int, int]]) -> list[bytes]:
        wanted.append(len(nodes))
        return tree.read(nodes)

    merkle.inclusion_proof(150, 300, counting)
    merkle.consistency_proof(131, 300, counting)
    assert len(wanted) == 2
    assert max(wanted) <= 2 * (300).bit_length()


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=299), st.data())
def test_tampered_proofs_never_verify(index: int, data: st.DataObject) -> None:
    size = data.draw(st.integers(min_value=index + 1, max_value=300))
    path = merkle.inclusion_proof(index, size, TREE_300.read)
    root = REFERENCE_300.mth(0, size)
    leaf = merkle.leaf_hash(LEAVES_300[index])
    if not path:
        return
    at = data.draw(st.integers(min_value=0, max_value=len(path) - 1))
    bit = data.draw(st.integers(min_value=0, max_value=255))
    bad = list(path)
    bad[at] = bytes(b ^ (1 << (bit % 8)) if i == bit // 8 else b for i, b in enumerate(bad[at]))
    assert not merkle.verify_inclusion(index, size, leaf, bad, root)
    assert not merkle.verify_inclusion(index, size, leaf, path[:-1], root)
    assert not merkle.verify_inclusion(index, size, leaf, [*path, root], root)


@pytest.mark.parametrize(
    ("level", "index", "position"),
    [(0, 0, 0), (0, 1, 1), (1, 0, 2), (0, 2, 3), (0, 3, 4), (1, 1, 5), (2, 0, 6), (0, 4, 7)],
    ids=lambda v: str(v),
)
def test_node_positions_are_post_order(level: int, index: int, position: int) -> None:
    assert merkle.node_position(level, index) == position


def test_compact_range_round_trips_through_bytes() -> None:
    tree = StoredTree(LEAVES_300[:77])
    packed = tree.range.to_bytes()
    again = merkle.CompactRange.from_bytes(77, packed)
    assert again.root() == REFERENCE_300.mth(0, 77)
    with pytest.raises(ValueError, match="does not match"):
        merkle.CompactRange.from_bytes(79, packed)


@pytest.mark.parametrize(
    ("index", "size"), [(0, 0), (3, 3), (-1, 4)], ids=["empty", "past-end", "negative"]
)
def test_inclusion_proof_refuses_indexes_outside_the_tree(index: int, size: int) -> None:
    with pytest.raises(ValueError, match="is not in a tree"):
        merkle.inclusion_proof(index, size, TREE_300.read)
