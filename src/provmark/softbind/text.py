"""Text fingerprints: normalise, split, keyed shingles, MinHash + LSH bands, part hashes.

Pipeline (the same at capture and at lookup):

1. split the text into paragraphs (blank lines) and sentences (``.!?`` and the CJK
   stops), keeping character offsets so a lookup can say which part matched;
2. normalise each sentence: Unicode NFKC, ``casefold``, words = ``\\w+`` runs
   (so whitespace and punctuation differences vanish);
3. shingles = 3-word windows *inside* a sentence (a shorter sentence is one
   shingle), so reordering sentences changes nothing and deleting one removes
   only its own shingles;
4. every shingle is hashed with HMAC-SHA-256 under the store's soft-binding key,
   so a fingerprint reveals nothing about the text to anyone without the key;
5. MinHash: 128 multiply-add-shift hashes of those 32-bit values, minimum of each;
   LSH: 32 bands of 4 rows, each band hashed to a 64-bit key;
6. part hashes (keyed): the whole normalised document, each paragraph of two or
   more sentences, and each sentence of at least :data:`MIN_PART_WORDS` words, so a
   quote of a few sentences finds its record even though its MinHash cannot.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SHINGLE_WORDS = 3
PERMUTATIONS = 128
BANDS = 32
ROWS = PERMUTATIONS // BANDS
MIN_WORDS = 8  # fewer words than this is too short to fingerprint or to look up
MIN_PART_WORDS = 6  # shorter sentences are too common to identify anything
MAX_CHARS = 2_000_000  # longer texts are fingerprinted on their first MAX_CHARS characters
MAX_PARTS = 2_000
PARAMS = f"text/1 shingle={SHINGLE_WORDS} minhash={PERMUTATIONS} bands={BANDS}x{ROWS}"

# part kinds, stored as small integers
DOCUMENT, PARAGRAPH, SENTENCE, PIXELS = 0, 1, 2, 3
PART_NAMES = {DOCUMENT: "document", PARAGRAPH: "paragraph", SENTENCE: "sentence", PIXELS: "pixels"}

_WORD = re.compile(r"\w+")
_PARAGRAPH = re.compile(r"\S(?:.*?\S)?(?=\s*\n\s*\n|\s*\Z)", re.S)
_SENTENCE = re.compile(r"\S.*?(?:[.!?]+[\"'”’)\]]*(?=\s)|[。！？]+|\Z)", re.S)


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
class Segment:
    """One sentence of the original text: offsets, paragraph number, normalised words."""

    start: int
    end: int
    paragraph: int
    words: tuple[str, ...]


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


def normalise(text: str) -> tuple[str, ...]:
    """NFKC, case-folded words: what every comparison sees."""
    return tuple(_WORD.findall(unicodedata.normalize("NFKC", text).casefold()))


def segments(text: str) -> list[Segment]:
    """Sentences with their offsets in ``text`` and their paragraph number."""
    out = []
    for p_no, para in enumerate(_PARAGRAPH.finditer(text)):
        for m in _SENTENCE.finditer(para.group()):
            words = normalise(m.group())
            if words:
                start = para.start() + m.start()
                out.append(Segment(start, start + len(m.group()), p_no, words))
    return out


class Keyed:
    """HMAC-SHA-256 under the soft-binding key, truncated as each use needs."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the soft-binding key must be at least 16 bytes")
        self._mac = hmac.new(key, digestmod=hashlib.sha256)

    def digest(self, data: bytes) -> bytes:
        h = self._mac.copy()
        h.update(data)
        return h.digest()

    def int64(self, data: bytes) -> int:
        return int.from_bytes(self.digest(data)[:8], "big", signed=True)

    def uint32s(self, items: list[bytes]) -> np.ndarray[Any, np.dtype[np.uint64]]:
        copy = self._mac.copy
        out = np.empty(len(items), dtype=np.uint64)
        for i, item in enumerate(items):
            h = copy()
            h.update(item)
            out[i] = int.from_bytes(h.digest()[:4], "little")
        return out


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


def resemblance(
    a: np.ndarray[Any, np.dtype[np.uint32]], b: np.ndarray[Any, np.dtype[np.uint32]]
) -> float:
    """The MinHash estimate of the Jaccard similarity of two shingle sets."""
    return float(np.count_nonzero(a == b)) / PERMUTATIONS


def containment(resemblance: float, query_shingles: int, other_shingles: int) -> float:
    """Estimated share of the query's shingles that the other text also has."""
    if query_shingles <= 0:
        return 0.0
    r = resemblance
    inter = r * (query_shingles + other_shingles) / (1.0 + r)
    return min(1.0, inter / query_shingles)
