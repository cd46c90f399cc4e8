"""RFC 9162 Merkle tree: O(log n) proofs against a naive reference, tampering, storage."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provmark.errors import ConfigError, StoreError, VerificationError
from provmark.log import (
    EMPTY_ROOT,
    CompactRange,
    MemoryNodeStore,
    NodeID,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    perfect_subtrees,
    root_at,
    verify_consistency,
    verify_inclusion,
)

MAX = 300
LEAVES = [leaf_hash(b"entry %d" % i) for i in range(MAX)]


# --- naive reference, straight from RFC 9162 §2.1.1, §2.1.3.1 and §2.1.4.1 -------------


def _split(n: int) -> int:
    """Largest power of two smaller than n."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


@cache
def ref_mth(lo: int, hi: int) -> bytes:
    if hi == lo:
        return hashlib.sha256(b"").digest()
    if hi - lo == 1:
        return LEAVES[lo]
    k = _split(hi - lo)
    return node_hash(ref_mth(lo, lo + k), ref_mth(lo + k, hi))


def ref_path(m: int, lo: int, hi: int) -> list[bytes]:
    n = hi - lo
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*ref_path(m, lo, lo + k), ref_mth(lo + k, hi)]
    return [*ref_path(m - k, lo + k, hi), ref_mth(lo, lo + k)]


def ref_subproof(m: int, lo: int, hi: int, b: bool) -> list[bytes]:
    n = hi - lo
    if m == n:
        return [] if b else [ref_mth(lo, hi)]
    k = _split(n)
    if m <= k:
        return [*ref_subproof(m, lo, lo + k, b), ref_mth(lo + k, hi)]
    return [*ref_subproof(m - k, lo + k, hi, False), ref_mth(lo, lo + k)]


def ref_consistency(m: int, n: int) -> list[bytes]:
    return [] if m in (0, n) else ref_subproof(m, 0, n, True)


# --- fixtures -----------------------------------------------------------------------


def _build(n: int) -> tuple[CompactRange, MemoryNodeStore]:
    cr = CompactRange()
    store = MemoryNodeStore()
    store.put(cr.extend(LEAVES[:n]))
    return cr, store


FULL_RANGE, FULL_STORE = _build(MAX)


class CountingReader:
    def __init__(self, inner: MemoryNodeStore) -> None:
        self.inner = inner
        self.calls: list[int] = []

    def get_nodes(self, ids: Sequence[NodeID]) -> list[bytes]:
        self.calls.append(len(ids))
        return self.inner.get_nodes(ids)


def _flip(data: bytes, pos: int) -> bytes:
    return data[:pos] + bytes([data[pos] ^ 0x01]) + data[pos + 1 :]


sizes = st.integers(min_value=1, max_value=MAX)


@st.composite
def size_and_index(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(sizes)
    return size, draw(st.integers(0, size - 1))


@st.composite
def two_sizes(draw: st.DrawFn) -> tuple[int, int]:
    new = draw(sizes)
    return draw(st.integers(0, new)), new


# --- known answers ------------------------------------------------------------------

# Certificate Transparency's RFC 6962 test vectors (leaf inputs and roots of sizes 1..8).
CT_INPUTS = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def test_known_answers() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    cr = CompactRange()
    assert cr.root() == EMPTY_ROOT
    for data, want in zip(CT_INPUTS, CT_ROOTS, strict=True):
        cr.append(leaf_hash(data))
        assert cr.root().hex() == want


def test_rfc_example_consistency_shapes() -> None:
    # RFC 9162 §2.1.5: PROOF(3, D[7]) has 4 nodes, PROOF(4, D[7]) 1, PROOF(6, D[7]) 3.
    assert [len(consistency_proof(m, 7, FULL_STORE)) for m in (3, 4, 6)] == [4, 1, 3]


# --- roots and storage --------------------------------------------------------------


def test_roots_match_reference_for_every_size() -> None:
    cr = CompactRange()
    assert root_at(0, FULL_STORE) == EMPTY_ROOT
    for n in range(1, MAX + 1):
        cr.append(LEAVES[n - 1])
        assert cr.size == n
        assert cr.root() == ref_mth(0, n)
        assert root_at(n, FULL_STORE) == ref_mth(0, n)


def test_store_holds_exactly_the_perfect_nodes() -> None:
    want = {
        (level, i)
        for level in range(MAX.bit_length())
        for i in range(MAX >> level)  # (i + 1) * 2**level <= MAX
    }
    assert len(FULL_STORE) == len(want)
    for level, i in want:
        assert FULL_STORE.get_nodes([(level, i)]) == [ref_mth(i << level, (i + 1) << level)]


@settings(max_examples=60)
@given(
    n=st.integers(0, MAX),
    cuts=st.lists(st.integers(0, MAX), max_size=12),
)
def test_extend_in_batches_gives_identical_nodes(n: int, cuts: list[int]) -> None:
    one_by_one = CompactRange()
    nodes_single = [node for leaf in LEAVES[:n] for node in one_by_one.append(leaf)]
    bounds = sorted({0, n, *(c for c in cuts if c <= n)})
    batched = CompactRange()
    nodes_batched = []
    for a, b in itertools.pairwise(bounds):
        nodes_batched += batched.extend(LEAVES[a:b])
    assert nodes_batched == nodes_single
    assert batched == one_by_one
    assert batched.root() == ref_mth(0, n)
    store = MemoryNodeStore()
    store.put(nodes_batched)
    assert CompactRange.from_nodes(n, store) == batched
    assert CompactRange.from_nodes(n, FULL_STORE) == batched
    assert CompactRange.from_json(batched.to_json()) == batched


def test_compact_range_from_nodes_uses_one_read() -> None:
    reader = CountingReader(FULL_STORE)
    cr = CompactRange.from_nodes(299, reader)
    assert reader.calls == [bin(299).count("1")]
    assert cr.root() == ref_mth(0, 299)
    assert [node_id for node_id, _ in cr.nodes()] == perfect_subtrees(0, 299)


def test_compact_range_rejects_bad_input() -> None:
    cr = CompactRange()
    with pytest.raises(ConfigError):
        cr.extend([LEAVES[0], b"short"])
    assert cr.size == 0  # nothing appended when a batch is invalid
    with pytest.raises(ConfigError):
        CompactRange.from_json('{"size": 3, "hashes": []}')
    with pytest.raises(ConfigError):
        CompactRange.from_json("not json")


def test_store_rejects_rewriting_a_node() -> None:
    store = MemoryNodeStore()
    store.put([((0, 0), LEAVES[0])])
    store.put([((0, 0), LEAVES[0])])  # idempotent
    with pytest.raises(StoreError):
        store.put([((0, 0), LEAVES[1])])


@given(st.integers(0, 10**6), st.integers(0, 10**6))
def test_perfect_subtrees_cover_range(a: int, b: int) -> None:
    begin, end = min(a, b), max(a, b)
    pos = begin
    ids = perfect_subtrees(begin, end)
    for level, index in ids:
        assert index << level == pos
        pos += 1 << level
    assert pos == end
    assert len(ids) <= 2 * max(end - begin, 1).bit_length()


# --- inclusion ----------------------------------------------------------------------


@settings(max_examples=300)
@given(size_and_index())
def test_inclusion_matches_reference_and_verifies(case: tuple[int, int]) -> None:
    size, index = case
    reader = CountingReader(FULL_STORE)
    proof = inclusion_proof(index, size, reader)
    assert proof == ref_path(index, 0, size)
    assert len(reader.calls) <= 1
    verify_inclusion(LEAVES[index], index, size, proof, ref_mth(0, size))


@settings(max_examples=150)
@given(size_and_index(), st.data())
def test_inclusion_tampering_fails(case: tuple[int, int], data: st.DataObject) -> None:
    size, index = case
    root = ref_mth(0, size)
    proof = inclusion_proof(index, size, FULL_STORE)
    pos = data.draw(st.integers(0, 31))
    with pytest.raises(VerificationError) as err:
        verify_inclusion(LEAVES[index], index, size, proof, _flip(root, pos))
    assert err.value.check == "inclusion_proof"
    with pytest.raises(VerificationError):
        verify_inclusion(_flip(LEAVES[index], 0), index, size, proof, root)
    if proof:
        j = data.draw(st.integers(0, len(proof) - 1))
        bad = [*proof]
        bad[j] = _flip(bad[j], pos)
        with pytest.raises(VerificationError):
            verify_inclusion(LEAVES[index], index, size, bad, root)
        with pytest.raises(VerificationError, match="wrong proof length"):
            verify_inclusion(LEAVES[index], index, size, proof[:-1], root)
    with pytest.raises(VerificationError, match="wrong proof length"):
        verify_inclusion(LEAVES[index], index, size, [*proof, root], root)
    if size > 1:
        other = data.draw(st.integers(0, size - 1).filter(lambda i: i != index))
        with pytest.raises(VerificationError):
            verify_inclusion(LEAVES[index], other, size, proof, root)
    # A wrong size, checked against the real root of that size, fails too. (The size
    # itself is authenticated by the signed checkpoint, which binds size and root.)
    if index + 1 < MAX:
        wrong = data.draw(st.integers(index + 1, MAX).filter(lambda s: s != size))
        assert ref_path(index, 0, wrong) != proof
        with pytest.raises(VerificationError):
            verify_inclusion(LEAVES[index], index, wrong, proof, ref_mth(0, wrong))


def test_inclusion_error_details() -> None:
    proof = inclusion_proof(3, 10, FULL_STORE)
    root = ref_mth(0, 10)
    with pytest.raises(VerificationError, match=r"leaf index 10 >= tree size 10"):
        verify_inclusion(LEAVES[3], 10, 10, proof, root)
    with pytest.raises(VerificationError, match=r"got 3, want 4"):
        verify_inclusion(LEAVES[3], 3, 10, proof[:3], root)
    with pytest.raises(VerificationError, match="root mismatch"):
        verify_inclusion(LEAVES[4], 3, 10, proof, root)
    with pytest.raises(VerificationError, match="31 bytes"):
        verify_inclusion(LEAVES[3], 3, 10, [proof[0][:31], *proof[1:]], root)
    with pytest.raises(ConfigError):
        inclusion_proof(10, 10, FULL_STORE)
    with pytest.raises(KeyError):
        inclusion_proof(3, MAX + 5, FULL_STORE)


# --- consistency --------------------------------------------------------------------


@settings(max_examples=300)
@given(two_sizes())
def test_consistency_matches_reference_and_verifies(case: tuple[int, int]) -> None:
    old, new = case
    reader = CountingReader(FULL_STORE)
    proof = consistency_proof(old, new, reader)
    assert proof == ref_consistency(old, new)
    assert len(reader.calls) <= 1
    verify_consistency(old, new, ref_mth(0, old), ref_mth(0, new), proof)


@settings(max_examples=150)
@given(two_sizes(), st.data())
def test_consistency_tampering_fails(case: tuple[int, int], data: st.DataObject) -> None:
    old, new = case
    old_root, new_root = ref_mth(0, old), ref_mth(0, new)
    proof = consistency_proof(old, new, FULL_STORE)
    pos = data.draw(st.integers(0, 31))
    with pytest.raises(VerificationError) as err:
        verify_consistency(old, new, _flip(old_root, pos), new_root, proof)
    assert err.value.check == "consistency"
    if old:  # with old_size 0 any new root is consistent
        with pytest.raises(VerificationError):
            verify_consistency(old, new, old_root, _flip(new_root, pos), proof)
    if proof:
        j = data.draw(st.integers(0, len(proof) - 1))
        bad = [*proof]
        bad[j] = _flip(bad[j], pos)
        with pytest.raises(VerificationError):
            verify_consistency(old, new, old_root, new_root, bad)
        with pytest.raises(VerificationError, match="wrong proof length"):
            verify_consistency(old, new, old_root, new_root, proof[:-1])
    with pytest.raises(VerificationError, match="wrong proof length"):
        verify_consistency(old, new, old_root, new_root, [*proof, new_root])
    # Other sizes, with their real roots: the proof fails unless it happens to be the
    # genuine proof for those sizes too (e.g. the empty proof from 0 or to the same size).
    wrong_old = data.draw(st.integers(0, new).filter(lambda s: s != old))
    if ref_consistency(wrong_old, new) != proof:
        with pytest.raises(VerificationError):
            verify_consistency(wrong_old, new, ref_mth(0, wrong_old), new_root, proof)
    wrong_new = data.draw(st.integers(old, MAX).filter(lambda s: s != new))
    if ref_consistency(old, wrong_new) != proof:
        with pytest.raises(VerificationError):
            verify_consistency(old, wrong_new, old_root, ref_mth(0, wrong_new), proof)


def test_consistency_edge_cases() -> None:
    r5, r8 = ref_mth(0, 5), ref_mth(0, 8)
    verify_consistency(0, 8, EMPTY_ROOT, r8, [])
    verify_consistency(8, 8, r8, r8, [])
    with pytest.raises(VerificationError, match="different roots"):
        verify_consistency(8, 8, r8, r5, [])
    with pytest.raises(VerificationError, match="empty root"):
        verify_consistency(0, 8, r5, r8, [])
    with pytest.raises(VerificationError, match="from 8 to 5"):
        verify_consistency(8, 5, r8, r5, [])
    with pytest.raises(ConfigError):
        consistency_proof(8, 5, FULL_STORE)


# --- O(log n) at scale ----------------------------------------------------------------


def test_proofs_at_scale_read_log_n_nodes() -> None:
    n = 70_001
    cr = CompactRange()
    store = MemoryNodeStore()
    store.put(cr.extend(leaf_hash(i.to_bytes(4, "big")) for i in range(n)))
    root = cr.root()
    assert root_at(n, store) == root
    for index in (0, 1, 4_095, 65_536, n - 2, n - 1):
        reader = CountingReader(store)
        proof = inclusion_proof(index, n, reader)
        assert len(reader.calls) == 1
        assert reader.calls[0] <= 2 * n.bit_length()
        verify_inclusion(leaf_hash(index.to_bytes(4, "big")), index, n, proof, root)
    for old in (1, 2, 3, 4_096, 65_537, n - 1):
        reader = CountingReader(store)
        proof = consistency_proof(old, n, reader)
        assert len(reader.calls) == 1
        assert reader.calls[0] <= 2 * n.bit_length()
        verify_consistency(old, n, root_at(old, store), root, proof)
