"""Text fingerprints of scheme 1 (word shingles), kept so stored ones are still found.

Scheme 1 hashed 3-word shingles inside each sentence (HMAC-SHA-256 under the
soft-binding key), kept a 128-slot MinHash with 32 LSH bands of 4 rows, and keyed
hashes of the whole text, of each paragraph and of each sentence of 6+ words. New
fingerprints use scheme 2 (:mod:`.text`); a store that holds scheme-1 fingerprints
keeps answering lookups for them with this code (:mod:`.lookup_v1`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .text import (
    DOCUMENT,
    MAX_CHARS,
    MIN_WORDS,
    PARAGRAPH,
    SENTENCE,
    Keyed,
    Segment,
    containment,
    normalise,
    resemblance,
    segments,
)

__all__ = ["Keyed", "containment", "normalise", "resemblance", "segments"]

SHINGLE_WORDS = 3
PERMUTATIONS = 128
BANDS = 32
ROWS = PERMUTATIONS // BANDS
MIN_PART_WORDS = 6  # shorter sentences are too common to identify anything
MAX_PARTS = 2_000
PARAMS = f"text/1 shingle={SHINGLE_WORDS} minhash={PERMUTATIONS} bands={BANDS}x{ROWS}"


def _constants() -> tuple[np.ndarray[Any, np.dtype[np.uint64]], ...]:
    """The MinHash hash family, fixed forever by SHA-256 of a label (not secret)."""
    a, b = [], []
    for i in range(PERMUTATIONS):
        d = hashlib.sha256(b"provmark softbind minhash %d" % i).digest()
        a.append(int.from_bytes(d[:8], "little") | 1)
        b.append(int.from_bytes(d[8:16], "little"))
    return np.array(a, dtype=np.uint64), np.array(b, dtype=np.uint64)


_A, _B = _constants()


@dataclass(frozen=True)
class Part:
    """A keyed hash of a whole document, paragraph or sentence."""

    hash: int  # signed 64-bit, as SQLite stores it
    kind: int
    ordinal: int  # sentence / paragraph number in the text
    words: int
    start: int  # character offsets in the text it came from
    end: int


@dataclass(frozen=True)
class TextPrint:
    """The fingerprint of one text."""

    words: int
    shingles: int
    signature: np.ndarray[Any, np.dtype[np.uint32]]
    bands: list[int]
    parts: list[Part]
    segments: list[Segment] = field(repr=False)

    @property
    def too_short(self) -> bool:
        return self.words < MIN_WORDS


def shingles(segs: list[Segment]) -> set[bytes]:
    out: set[bytes] = set()
    k = SHINGLE_WORDS
    for s in segs:
        w = s.words
        if len(w) <= k:
            out.add(" ".join(w).encode())
        else:
            out.update(" ".join(w[i : i + k]).encode() for i in range(len(w) - k + 1))
    return out


def minhash(values: np.ndarray[Any, np.dtype[np.uint64]]) -> np.ndarray[Any, np.dtype[np.uint32]]:
    """128 minimums of ((a*x + b) mod 2**64) >> 32 over the keyed 32-bit shingle values."""
    if values.size == 0:
        return np.full(PERMUTATIONS, 0xFFFFFFFF, dtype=np.uint32)
    mins = np.full(PERMUTATIONS, np.iinfo(np.uint64).max, dtype=np.uint64)
    for chunk in range(0, values.size, 4096):  # bounded memory for very long texts
        x = values[chunk : chunk + 4096, None]
        mins = np.minimum(mins, ((x * _A + _B) >> np.uint64(32)).min(axis=0))
    return mins.astype(np.uint32)


def band_keys(signature: np.ndarray[Any, np.dtype[np.uint32]]) -> list[int]:
    raw = signature.astype("<u4").tobytes()
    step = ROWS * 4
    return [
        int.from_bytes(
            hashlib.blake2b(bytes([b]) + raw[b * step : (b + 1) * step], digest_size=8).digest(),
            "big",
            signed=True,
        )
        for b in range(BANDS)
    ]


def parts(segs: list[Segment], keyed: Keyed) -> list[Part]:
    out: list[Part] = []
    if not segs:
        return out
    everything = [w for s in segs for w in s.words]
    out.append(
        Part(
            keyed.int64(b"d\x00" + " ".join(everything).encode()),
            DOCUMENT,
            0,
            len(everything),
            segs[0].start,
            segs[-1].end,
        )
    )
    by_para: dict[int, list[Segment]] = {}
    for s in segs:
        by_para.setdefault(s.paragraph, []).append(s)
    if len(by_para) > 1:
        for p_no, group in by_para.items():
            words = [w for s in group for w in s.words]
            if len(group) >= 2 and len(words) >= MIN_PART_WORDS:
                data = b"p\x00" + " ".join(words).encode()
                out.append(
                    Part(
                        keyed.int64(data),
                        PARAGRAPH,
                        p_no,
                        len(words),
                        group[0].start,
                        group[-1].end,
                    )
                )
    for i, s in enumerate(segs):
        if len(s.words) >= MIN_PART_WORDS:
            data = b"s\x00" + " ".join(s.words).encode()
            out.append(Part(keyed.int64(data), SENTENCE, i, len(s.words), s.start, s.end))
    return out[:MAX_PARTS]


def fingerprint_text(text: str, keyed: Keyed) -> TextPrint:
    segs = segments(text[:MAX_CHARS])
    words = sum(len(s.words) for s in segs)
    found = sorted(shingles(segs))
    signature = minhash(keyed.uint32s(found))
    return TextPrint(
        words=words,
        shingles=len(found),
        signature=signature,
        bands=band_keys(signature),
        parts=parts(segs, keyed),
        segments=segs,
    )
