"""RFC 9162 Merkle tree: hashing, compact ranges, O(log n) proofs and their verification.

A node ``(level, index)`` is the root of the perfect subtree covering leaves
``[index * 2**level, (index + 1) * 2**level)``; level 0 holds the leaf hashes.
Storage only ever holds such perfect nodes; the hashes of right-border nodes of a
tree whose size is not a power of two are folded from the perfect subtrees they cover.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Protocol

from provmark.errors import ConfigError, StoreError, VerificationError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "MemoryNodeStore",
    "Node",
    "NodeID",
    "NodeReader",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "perfect_subtrees",
    "root_at",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeID = tuple[int, int]
"""``(level, index)`` of a perfect subtree."""
Node = tuple[NodeID, bytes]
"""A node id and its hash, as a store persists it."""

_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data)."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return _sha256(b"\x01" + left + right).digest()


class NodeReader(Protocol):
    """Batched read access to stored perfect nodes."""

    def get_nodes(self, ids: Sequence[NodeID]) -> list[bytes]:
        """Return the hashes of ``ids`` in order; raise ``KeyError`` if one is missing."""
        ...


class MemoryNodeStore:
    """Dict-backed :class:`NodeReader`; nodes are write-once."""

    def __init__(self) -> None:
        self._nodes: dict[NodeID, bytes] = {}

    def get_nodes(self, ids: Sequence[NodeID]) -> list[bytes]:
        nodes = self._nodes
        return [nodes[i] for i in ids]

    def put(self, nodes: Iterable[Node]) -> None:
        """Store nodes; storing a node again with a different hash is an error."""
        stored = self._nodes
        for node_id, h in nodes:
            old = stored.setdefault(node_id, h)
            if old != h:
                raise StoreError(f"node {node_id} is already stored with a different hash")

    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._nodes


def perfect_subtrees(begin: int, end: int) -> list[NodeID]:
    """The aligned perfect subtrees that exactly cover ``[begin, end)``, left to right."""
    if begin < 0 or end < begin:
        raise ConfigError(f"invalid leaf range [{begin}, {end})")
    ids: list[NodeID] = []
    while begin < end:
        level = (end - begin).bit_length() - 1
        if begin:
            level = min(level, (begin & -begin).bit_length() - 1)
        ids.append((level, begin >> level))
        begin += 1 << level
    return ids


def _fold(hashes: Sequence[bytes]) -> bytes:
    """Hash of an RFC 9162 subtree from its perfect subtrees (left to right)."""
    h = hashes[-1]
    for i in range(len(hashes) - 2, -1, -1):
        h = _sha256(b"\x01" + hashes[i] + h).digest()
    return h


class CompactRange:
    """The right border of a tree: one perfect-subtree root per set bit of its size."""

    __slots__ = ("_hashes", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._hashes: list[bytes] = []

    @property
    def size(self) -> int:
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """Border hashes, left to right (highest level first)."""
        return tuple(self._hashes)

    def nodes(self) -> list[Node]:
        """Border nodes with their ids, left to right."""
        return list(zip(perfect_subtrees(0, self._size), self._hashes, strict=True))

    def append(self, leaf_hash: bytes) -> list[Node]:
        """Add one leaf hash; return the new perfect nodes (the leaf and merged parents)."""
        return self.extend((leaf_hash,))

    def extend(self, leaf_hashes: Iterable[bytes]) -> list[Node]:
        """Add leaf hashes in order; return all new perfect nodes."""
        batch = leaf_hashes if isinstance(leaf_hashes, (list, tuple)) else list(leaf_hashes)
        for h in batch:
            if len(h) != HASH_SIZE:
                raise ConfigError(f"leaf hash has {len(h)} bytes, want {HASH_SIZE}")
        sha = _sha256
        hashes = self._hashes
        pop = hashes.pop
        push = hashes.append
        size = self._size
        new: list[Node] = []
        add = new.append
        for h in batch:
            add(((0, size), h))
            level = 0
            idx = size
            while idx & 1:
                h = sha(b"\x01" + pop() + h).digest()
                level += 1
                idx >>= 1
                add(((level, idx), h))
            push(h)
            size += 1
        self._size = size
        return new

    def root(self) -> bytes:
        """Root hash of the tree of ``size`` leaves."""
        return _fold(self._hashes) if self._hashes else EMPTY_ROOT

    def copy(self) -> CompactRange:
        return CompactRange._make(self._size, list(self._hashes))

    @classmethod
    def _make(cls, size: int, hashes: list[bytes]) -> CompactRange:
        if size < 0:
            raise ConfigError(f"negative tree size {size}")
        if len(hashes) != size.bit_count():
            raise ConfigError(
                f"tree size {size} needs {size.bit_count()} hashes, got {len(hashes)}"
            )
        if any(len(h) != HASH_SIZE for h in hashes):
            raise ConfigError(f"compact range hashes must be {HASH_SIZE} bytes")
        cr = cls()
        cr._size = size
        cr._hashes = hashes
        return cr

    @classmethod
    def from_nodes(cls, size: int, reader: NodeReader) -> CompactRange:
        """Rebuild the border of a stored tree of ``size`` leaves (one batched read)."""
        ids = perfect_subtrees(0, size)
        return cls._make(size, _read(reader, ids))

    def to_json(self) -> str:
        return json.dumps({"size": self._size, "hashes": [h.hex() for h in self._hashes]})

    @classmethod
    def from_json(cls, text: str) -> CompactRange:
        try:
            obj = json.loads(text)
            size = obj["size"]
            hashes = [bytes.fromhex(h) for h in obj["hashes"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"invalid compact range JSON: {exc}") from exc
        if not isinstance(size, int) or isinstance(size, bool):
            raise ConfigError("invalid compact range JSON: size is not an integer")
        return cls._make(size, hashes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompactRange):
            return NotImplemented
        return self._size == other._size and self._hashes == other._hashes

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"CompactRange(size={self._size}, root={self.root().hex()})"


def _read(reader: NodeReader, ids: list[NodeID]) -> list[bytes]:
    if not ids:
        return []
    hashes = reader.get_nodes(ids)
    if len(hashes) != len(ids):
        raise StoreError(f"node reader returned {len(hashes)} hashes for {len(ids)} ids")
    return hashes


def _path_ids(index: int, level: int, size: int) -> tuple[list[NodeID], int, int]:
    """Node ids of the audit path of node ``(level, index)`` in a tree of ``size`` leaves.

    Returns ``(ids, n_inner, n_right)``: ``ids[:n_inner]`` are sibling nodes below the
    point where the path meets the right border, the next ``n_right`` ids compose one
    ephemeral right-border node, and the rest are left siblings, bottom-up.
    """
    inner = (index ^ (size >> level)).bit_length() - 1
    fork_level = level + inner
    begin = (index >> inner) << fork_level
    end = begin + (1 << fork_level)
    ids = [(level + i, (index >> i) ^ 1) for i in range(inner)]
    right = perfect_subtrees(end, size)
    left = perfect_subtrees(0, begin)
    left.reverse()
    return ids + right + left, inner, len(right)


def _assemble(hashes: list[bytes], n_inner: int, n_right: int) -> list[bytes]:
    proof = hashes[:n_inner]
    if n_right:
        proof.append(_fold(hashes[n_inner : n_inner + n_right]))
    proof.extend(hashes[n_inner + n_right :])
    return proof


def inclusion_proof(index: int, size: int, reader: NodeReader) -> list[bytes]:
    """RFC 9162 audit path of leaf ``index`` in the tree of ``size`` leaves."""
    if not 0 <= index < size:
        raise ConfigError(f"leaf index {index} is not in a tree of size {size}")
    ids, n_inner, n_right = _path_ids(index, 0, size)
    return _assemble(_read(reader, ids), n_inner, n_right)


def consistency_proof(old_size: int, new_size: int, reader: NodeReader) -> list[bytes]:
    """RFC 9162 consistency proof from the tree of ``old_size`` to ``new_size`` leaves."""
    if not 0 <= old_size <= new_size:
        raise ConfigError(f"no consistency proof from size {old_size} to {new_size}")
    if old_size == 0 or old_size == new_size:
        return []
    # Seed: the largest perfect subtree ending at old_size. It is omitted when it is
    # the whole old tree (old_size a power of two): the verifier knows the old root.
    level = (old_size & -old_size).bit_length() - 1
    index = (old_size >> level) - 1
    ids, n_inner, n_right = _path_ids(index, level, new_size)
    if index:
        ids.insert(0, (level, index))
        n_inner += 1
    return _assemble(_read(reader, ids), n_inner, n_right)


def root_at(size: int, reader: NodeReader) -> bytes:
    """Root hash of the stored tree's first ``size`` leaves."""
    if size < 0:
        raise ConfigError(f"negative tree size {size}")
    if size == 0:
        return EMPTY_ROOT
    return _fold(_read(reader, perfect_subtrees(0, size)))


def _inclusion_length(index: int, size: int) -> int:
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def _check_hashes(check: str, what: str, hashes: Iterable[bytes]) -> None:
    for i, h in enumerate(hashes):
        if not isinstance(h, bytes) or len(h) != HASH_SIZE:
            n = len(h) if isinstance(h, bytes) else type(h).__name__
            raise VerificationError(check, f"{what} {i} has {n} bytes, want {HASH_SIZE}")


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check an audit path (RFC 9162 §2.1.3.2); raise ``VerificationError`` on failure."""
    check = "inclusion_proof"
    if index < 0 or size < 0:
        raise VerificationError(check, f"negative leaf index {index} or tree size {size}")
    if index >= size:
        raise VerificationError(check, f"leaf index {index} >= tree size {size}")
    _check_hashes(check, "leaf hash", (leaf_hash,))
    _check_hashes(check, "root hash", (root,))
    _check_hashes(check, "proof hash", proof)
    want = _inclusion_length(index, size)
    if len(proof) != want:
        raise VerificationError(
            check, f"wrong proof length for leaf {index} of {size}: got {len(proof)}, want {want}"
        )
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            raise VerificationError(check, "proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            r = _sha256(b"\x01" + p + r).digest()
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = _sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError(check, "proof is shorter than the path to the root")
    if r != root:
        raise VerificationError(
            check, f"root mismatch: proof gives {r.hex()}, tree of size {size} has {root.hex()}"
        )


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check a consistency proof (RFC 9162 §2.1.4.2); raise ``VerificationError`` on failure."""
    check = "consistency"
    if old_size < 0 or new_size < old_size:
        raise VerificationError(check, f"tree size went from {old_size} to {new_size}")
    _check_hashes(check, "old root", (old_root,))
    _check_hashes(check, "new root", (new_root,))
    _check_hashes(check, "proof hash", proof)
    if old_size == 0 or old_size == new_size:
        if proof:
            raise VerificationError(
                check, f"wrong proof length from {old_size} to {new_size}: got {len(proof)}, want 0"
            )
        if old_size == 0 and old_root != EMPTY_ROOT:
            raise VerificationError(check, "old root of the empty tree is not the empty root")
        if old_size == new_size and old_root != new_root:
            raise VerificationError(check, f"different roots for the same tree size {old_size}")
        return
    level = (old_size & -old_size).bit_length() - 1
    index = (old_size >> level) - 1
    want = _inclusion_length(index, ((new_size - 1) >> level) + 1) + (1 if index else 0)
    if len(proof) != want:
        raise VerificationError(
            check,
            f"wrong proof length from {old_size} to {new_size}: got {len(proof)}, want {want}",
        )
    path = list(proof)
    if index == 0:  # old_size is a power of two
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise VerificationError(check, "proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            fr = _sha256(b"\x01" + c + fr).digest()
            sr = _sha256(b"\x01" + c + sr).digest()
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = _sha256(b"\x01" + sr + c).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError(check, "proof is shorter than the path to the root")
    if fr != old_root:
        raise VerificationError(
            check,
            f"old root mismatch at size {old_size}: proof gives {fr.hex()}, want {old_root.hex()}",
        )
    if sr != new_root:
        raise VerificationError(
            check,
            f"new root mismatch at size {new_size}: proof gives {sr.hex()}, want {new_root.hex()}",
        )
