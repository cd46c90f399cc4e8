"""Multi-index hashing (Norouzi, Punjani, Fleet 2012) for 64-bit codes in memory.

Each code is cut into four 16-bit pieces, one table per piece. If two codes are
within Hamming distance ``r``, at least one piece is within ``r // 4`` of the
other's (pigeonhole), so a search looks up every 16-bit value within ``r // 4``
of each query piece, gathers those rows and keeps the ones truly within ``r``.
With a million codes a bucket holds about 15 rows, so a search touches hundreds
to a few thousand rows instead of a million.

Tables are compressed sparse rows (``offsets[v]:offsets[v+1]`` into ``order``);
codes added after the last build sit in a tail that is scanned directly until
it is large enough to rebuild.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np

U64 = np.ndarray[Any, np.dtype[np.uint64]]
I64 = np.ndarray[Any, np.dtype[np.int64]]
PIECES = 4
PIECE_BITS = 16


def _masks(radius: int) -> np.ndarray[Any, np.dtype[np.uint64]]:
    out = [0]
    for k in range(1, radius + 1):
        out += [sum(1 << b for b in bits) for bits in combinations(range(PIECE_BITS), k)]
    return np.array(out, dtype=np.uint64)


def popcount(x: U64) -> np.ndarray[Any, np.dtype[np.uint8]]:
    return np.bitwise_count(x)


class HammingIndex:
    """Codes (uint64) with their row numbers; search by Hamming radius."""

    def __init__(self) -> None:
        self.codes: U64 = np.empty(0, dtype=np.uint64)
        self._built = 0
        self._order: list[I64] = []
        self._offsets: list[I64] = []
        self._masks = {r: _masks(r) for r in range(4)}

    def __len__(self) -> int:
        return int(self.codes.size)

    def add(self, codes: U64) -> None:
        self.codes = np.concatenate([self.codes, codes.astype(np.uint64, copy=False)])
        tail = self.codes.size - self._built
        if tail > max(4096, self._built // 8):
            self._build()

    def _build(self) -> None:
        self._order, self._offsets = [], []
        for piece in range(PIECES):
            keys = ((self.codes >> np.uint64(PIECE_BITS * piece)) & np.uint64(0xFFFF)).astype(
                np.int64
            )
            order = np.argsort(keys, kind="stable")
            counts = np.bincount(keys, minlength=1 << PIECE_BITS)
            offsets = np.zeros((1 << PIECE_BITS) + 1, dtype=np.int64)
            np.cumsum(counts, out=offsets[1:])
            self._order.append(order.astype(np.int64))
            self._offsets.append(offsets)
        self._built = int(self.codes.size)

    def search(
        self,
        queries: U64,
        radius: np.ndarray[Any, np.dtype[np.int64]],
        piece_radius: np.ndarray[Any, np.dtype[np.int64]] | None = None,
    ) -> tuple[I64, I64, I64]:
        """Every (query number, row, distance) with distance <= that query's radius.

        Exact when ``piece_radius`` is ``radius // 4`` (the default); a smaller
        piece radius searches fewer buckets and may miss codes near the radius.
        """
        queries = queries.astype(np.uint64, copy=False)
        radius = np.asarray(radius, dtype=np.int64)
        pieces_r = radius // PIECES if piece_radius is None else np.asarray(piece_radius)
        pieces_r = np.minimum(pieces_r.astype(np.int64), radius // PIECES)
        if pieces_r.size and int(pieces_r.max()) > 3:
            raise ValueError("a piece radius above 3 (radius 16 or more) is not supported")
        qs: list[I64] = []
        rows: list[I64] = []
        if self._built:
            groups = [(r, np.flatnonzero(pieces_r == r)) for r in set(pieces_r.tolist())]
            for piece in range(PIECES):
                pieces = (queries >> np.uint64(PIECE_BITS * piece)) & np.uint64(0xFFFF)
                for r, sel in groups:
                    q, rw = self._gather(piece, pieces[sel], self._masks[r])
                    qs.append(sel[q])
                    rows.append(rw)
        if self.codes.size > self._built:  # the tail: compare directly
            tail = np.arange(self._built, self.codes.size, dtype=np.int64)
            qs.append(np.repeat(np.arange(queries.size, dtype=np.int64), tail.size))
            rows.append(np.tile(tail, queries.size))
        if not qs:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty, empty
        q_all, r_all = np.concatenate(qs), np.concatenate(rows)
        dist = popcount(self.codes[r_all] ^ queries[q_all]).astype(np.int64)
        keep = dist <= radius[q_all]
        # a row found through several pieces is reported once
        n = np.int64(max(1, self.codes.size))
        pair, first = np.unique(q_all[keep] * n + r_all[keep], return_index=True)
        return pair // n, pair % n, dist[keep][first]

    def _gather(self, piece: int, pieces: U64, masks: U64) -> tuple[I64, I64]:
        keys = (pieces[:, None] ^ masks[None, :]).astype(np.int64)
        offsets, order = self._offsets[piece], self._order[piece]
        starts = offsets[keys].ravel()
        lengths = offsets[keys + 1].ravel() - starts
        total = int(lengths.sum())
        q = np.repeat(np.repeat(np.arange(pieces.size, dtype=np.int64), masks.size), lengths)
        if total == 0:
            return q, np.empty(0, dtype=np.int64)
        # positions start..start+len for every bucket, without a Python loop
        ends = np.cumsum(lengths)
        pos = np.arange(total, dtype=np.int64) - np.repeat(ends - lengths - starts, lengths)
        return q, order[pos]
