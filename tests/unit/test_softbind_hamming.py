"""The multi-index Hamming index against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from provmark.softbind.hamming import HammingIndex


def near(codes: np.ndarray, rng: np.random.Generator, flips: int) -> np.ndarray:
    out = codes.copy()
    for i in range(out.size):
        for b in rng.choice(64, size=flips, replace=False):
            out[i] ^= np.uint64(1) << np.uint64(int(b))
    return out


def brute(codes: np.ndarray, q: int, radius: int) -> set[int]:
    return set(np.flatnonzero(np.bitwise_count(codes ^ np.uint64(q)) <= radius).tolist())


@pytest.mark.parametrize("size", [100, 20_000])  # all in the tail / built tables
def test_search_equals_brute_force(size: int) -> None:
    rng = np.random.default_rng(size)
    codes = rng.integers(0, 2**64, size=size, dtype=np.uint64)
    index = HammingIndex()
    index.add(codes)
    queries = np.concatenate([near(codes[:30], rng, 3), near(codes[30:60], rng, 9)])
    radius = np.array([0, 3, 7, 10, 11, 15] * 10, dtype=np.int64)
    q, rows, dist = index.search(queries, radius)
    for i, code in enumerate(queries):
        found = set(rows[q == i].tolist())
        assert found == brute(codes, int(code), int(radius[i]))
    assert np.array_equal(dist, np.bitwise_count(codes[rows] ^ queries[q]))


def test_codes_added_later_are_found_then_built() -> None:
    rng = np.random.default_rng(1)
    index = HammingIndex()
    first = rng.integers(0, 2**64, size=10_000, dtype=np.uint64)
    index.add(first)
    late = rng.integers(0, 2**64, size=5, dtype=np.uint64)
    index.add(late)  # a small tail: scanned directly
    _q, rows, _ = index.search(late, np.zeros(5, dtype=np.int64))
    assert sorted(rows.tolist()) == list(range(10_000, 10_005))
    index.add(rng.integers(0, 2**64, size=5_000, dtype=np.uint64))  # big enough to rebuild
    _q, rows, _ = index.search(late, np.zeros(5, dtype=np.int64))
    assert sorted(rows.tolist()) == list(range(10_000, 10_005))


def test_approximate_piece_radius() -> None:
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 2**64, size=20_000, dtype=np.uint64)
    index = HammingIndex()
    index.add(codes)
    queries = near(codes[:200], rng, 7)  # 7 bits: some piece differs by at most 1
    q, rows, _ = index.search(
        queries, np.full(200, 8, dtype=np.int64), np.full(200, 1, dtype=np.int64)
    )
    assert all(i in rows[q == i] for i in range(200))


def test_empty_index_and_bad_radius() -> None:
    index = HammingIndex()
    q, rows, dist = index.search(np.array([1], dtype=np.uint64), np.array([4]))
    assert q.size == rows.size == dist.size == 0
    index.add(np.arange(5000, dtype=np.uint64))
    with pytest.raises(ValueError, match="radius"):
        index.search(np.array([1], dtype=np.uint64), np.array([16]))
