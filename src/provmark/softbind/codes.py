"""The in-memory index of stored image codes, shared by the SQLite and PostgreSQL stores.

Rows (item, region, pHash, dHash, colour, width, height) are loaded once and topped up
with the rows added since (by any process); a search runs the multi-index Hamming
search on pHash (:class:`~provmark.softbind.hamming.HammingIndex`) and filters the rows
found by region, dHash, chromaticity and aspect ratio.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import image as img
from .hamming import HammingIndex

RECENT = 20_000  # items remembered as loaded, for stores whose rows commit out of order


@dataclass(frozen=True)
class CodeHit:
    probe: int
    item: int
    region: int
    phash_distance: int
    dhash_distance: int


class CodeIndex:
    """Image codes in memory: per-row arrays and the pHash index over them."""

    def __init__(self) -> None:
        self.index = HammingIndex()
        self.item = np.empty(0, dtype=np.int64)
        self.region = np.empty(0, dtype=np.int8)
        self.dhash = np.empty(0, dtype=np.uint64)
        self.chroma = np.empty((0, 2), dtype=np.float64)
        self.aspect = np.empty(0, dtype=np.float64)
        self.loaded_item = 0  # the highest item loaded
        self._recent: set[int] = set()  # items loaded lately (late commits may come below)

    def __len__(self) -> int:
        return int(self.item.size)

    def recent(self, since: int) -> set[int]:
        """Items already loaded that are above ``since`` (``since`` within the last
        :data:`RECENT` items)."""
        return {i for i in self._recent if i > since}

    def add(self, rows: Sequence[Sequence[Any]]) -> None:
        """Rows of (item, region, phash, dhash, colour, width, height), signed 64-bit
        hashes as the databases store them, in item order."""
        if not rows:
            return
        arr = np.array([r[:5] for r in rows], dtype=np.int64)
        aspect = np.log(np.array([(r[5] or 1) / (r[6] or 1) for r in rows], dtype=np.float64))
        self.aspect = np.concatenate([self.aspect, aspect])
        self.item = np.concatenate([self.item, arr[:, 0]])
        self.region = np.concatenate([self.region, arr[:, 1].astype(np.int8)])
        self.dhash = np.concatenate([self.dhash, arr[:, 3].view(np.uint64)])
        self.chroma = np.concatenate([self.chroma, img.chromaticity(arr[:, 4])])
        self.index.add(arr[:, 2].view(np.uint64))
        self.loaded_item = max(self.loaded_item, int(arr[:, 0].max()))
        self._recent.update(arr[:, 0].tolist())
        if len(self._recent) > 2 * RECENT:
            floor = self.loaded_item - RECENT
            self._recent = {i for i in self._recent if i > floor}

    def search(self, probes: Sequence[img.Probe]) -> list[CodeHit]:
        if not probes:
            return []
        q, rows, dist = self.index.search(
            np.array([p.phash for p in probes], dtype=np.uint64),
            np.array([p.limits.radius for p in probes], dtype=np.int64),
            np.array([p.limits.piece_radius for p in probes], dtype=np.int64),
        )
        if q.size == 0:
            return []
        targets = np.array([p.target for p in probes], dtype=np.int8)
        dq = np.array([p.dhash for p in probes], dtype=np.uint64)
        dmax = np.array([p.limits.max_dhash for p in probes], dtype=np.int64)
        cq = img.chromaticity(np.array([p.colour for p in probes], dtype=np.int64))
        cmax = np.array([p.limits.max_chroma for p in probes], dtype=np.float64)
        ddist = np.bitwise_count(self.dhash[rows] ^ dq[q]).astype(np.int64)
        cdist = np.abs(self.chroma[rows] - cq[q]).max(axis=1)
        aq = np.log(np.array([p.aspect for p in probes], dtype=np.float64))
        amax = np.array([p.limits.max_aspect for p in probes], dtype=np.float64)
        adist = np.abs(self.aspect[rows] - aq[q])
        keep = (
            (self.region[rows] == targets[q])
            & (ddist <= dmax[q])
            & (cdist <= cmax[q])
            & (adist <= amax[q])
        )
        found = zip(q[keep], rows[keep], dist[keep], ddist[keep], strict=True)
        return [
            CodeHit(int(p), int(self.item[r]), int(self.region[r]), int(d), int(e))
            for p, r, d, e in found
        ]
