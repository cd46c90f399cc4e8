"""Text fingerprints (scheme 2): character shingles, one-permutation MinHash, winnowed anchors.

Pipeline (the same at capture and at lookup):

1. split the text into paragraphs (blank lines) and sentences (``.!?`` and the CJK
   stops), keeping character offsets so a lookup can say which part matched;
2. normalise: Unicode NFKC, ``casefold``, words = ``\\w+`` runs joined by one space
   (whitespace, punctuation, case and full-width forms stop mattering);
3. character shingles of :data:`SHINGLE_CHARS` characters inside each sentence: a typo
   breaks only the few shingles that contain it, where it broke every word shingle
   of the word, and reordering sentences changes none;
4. MinHash by one-permutation hashing (Li et al. 2012) with rotation densification
   (Shrivastava and Li 2014): :data:`SLOTS` minimums, one pass over the shingles;
5. anchors by winnowing (Schleimer et al. 2003): the smallest hash of every window of
   :data:`WINDOW` consecutive :data:`ANCHOR_CHARS`-character shingles. Any run of
   ``WINDOW + ANCHOR_CHARS - 1`` characters shared with a stored text yields a shared
   anchor, and every anchor of an exact quote is an anchor of its source, so
   *containment* (the share of the query's anchors found in a record) finds quotes
   that resemble their source only by their length ratio.

Steps 1-5 use public hash functions only: their result, a :class:`Sketch`, can be made
by a client and sent with its records. :func:`seal` then maps every signature slot and
every anchor through AES-256 under a key derived from the store's soft-binding key (a
keyed permutation: equality is all the lookup needs), so stored fingerprints reveal
nothing about the text without the key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from numpy.lib.stride_tricks import sliding_window_view

SCHEME = 2
SHINGLE_CHARS = 8  # a power of two (polynomial hashes by doubling)
ANCHOR_CHARS = 2 * SHINGLE_CHARS
WINDOW = 12
SLOTS = 128
PERMUTATIONS = SLOTS  # the name scheme 1 used
MIN_WORDS = 8  # fewer words than this is too short to fingerprint or to look up
MAX_CHARS = 2_000_000  # longer texts are fingerprinted on their first MAX_CHARS characters
MAX_ANCHORS = 20_000
PARAMS = f"text/2 shingle={SHINGLE_CHARS}c oph={SLOTS} anchors={ANCHOR_CHARS}c/w{WINDOW}"

# part kinds, stored as small integers (0-2: scheme 1)
DOCUMENT, PARAGRAPH, SENTENCE, PIXELS, ANCHOR = 0, 1, 2, 3, 4
PART_NAMES = {
    DOCUMENT: "document",
    PARAGRAPH: "paragraph",
    SENTENCE: "sentence",
    PIXELS: "pixels",
    ANCHOR: "sentence",
}

_WORD = re.compile(r"\w+")
_PARAGRAPH = re.compile(r"\S(?:.*?\S)?(?=\s*\n\s*\n|\s*\Z)", re.S)
_SENTENCE = re.compile(r"\S.*?(?:[.!?]+[\"'”’)\]]*(?=\s)|[。！？]+|\Z)", re.S)
_U64 = np.uint64
_BASE = _U64(0x100000001B3)
_SEED_SHINGLE = _U64(0x9E3779B97F4A7C15)
_SEED_ANCHOR = _U64(0xD6E8FEB86659FD93)
_EMPTY = _U64(1 << 32)
_TAG_SLOT, _TAG_ANCHOR = 1, 2

U32 = np.ndarray[Any, np.dtype[np.uint32]]
U64 = np.ndarray[Any, np.dtype[np.uint64]]


@dataclass(frozen=True)
class Segment:
    """One sentence of the original text: offsets, paragraph number, normalised words."""

    start: int
    end: int
    paragraph: int
    words: tuple[str, ...]


@dataclass(frozen=True)
class Sketch:
    """The unkeyed fingerprint of a text: what a client computes and may send."""

    words: int
    shingles: int  # distinct character shingles
    signature: U32  # SLOTS one-permutation MinHash values
    anchors: U64  # distinct winnowed anchor hashes
    anchor_sentences: np.ndarray[Any, np.dtype[np.int32]]  # sentence of each anchor
    # where each anchor starts in the normalised text (lookup only; not sent or stored)
    anchor_positions: np.ndarray[Any, np.dtype[np.intp]] = field(
        default_factory=lambda: np.empty(0, np.intp), repr=False
    )

    @property
    def too_short(self) -> bool:
        return self.words < MIN_WORDS

    def to_json(self) -> dict[str, Any]:
        return {
            "scheme": SCHEME,
            "words": self.words,
            "shingles": self.shingles,
            "minhash": base64.b64encode(self.signature.astype("<u4").tobytes()).decode(),
            "anchors": base64.b64encode(self.anchors.astype("<u8").tobytes()).decode(),
            "anchor_sentences": base64.b64encode(
                self.anchor_sentences.astype("<i4").tobytes()
            ).decode(),
        }

    @classmethod
    def from_json(cls, data: Any) -> Sketch:
        """Parse a client's sketch; ``ValueError`` naming the field on anything malformed."""
        if not isinstance(data, dict):
            raise ValueError("fingerprint: an object is expected")
        if data.get("scheme") != SCHEME:
            raise ValueError(f"fingerprint.scheme: only scheme {SCHEME} is accepted")
        sig = _array(data, "minhash", "<u4")
        anchors = _array(data, "anchors", "<u8")
        sents = _array(data, "anchor_sentences", "<i4")
        if sig.size != SLOTS:
            raise ValueError(f"fingerprint.minhash: {SLOTS} values expected, not {sig.size}")
        if anchors.size != sents.size or anchors.size > MAX_ANCHORS:
            raise ValueError("fingerprint.anchors: one sentence per anchor, at most 20000")
        words, shingles = data.get("words"), data.get("shingles")
        for name, v in (("words", words), ("shingles", shingles)):
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 1 << 31:
                raise ValueError(f"fingerprint.{name}: a non-negative integer is expected")
        assert isinstance(words, int) and isinstance(shingles, int)
        return cls(words, shingles, sig.astype(np.uint32), anchors.astype(np.uint64), sents)


def _array(data: dict[str, Any], name: str, dtype: str) -> np.ndarray[Any, Any]:
    value = data.get(name)
    if not isinstance(value, str):
        raise ValueError(f"fingerprint.{name}: base64 text is expected")
    try:
        return np.frombuffer(base64.b64decode(value, validate=True), dtype=dtype)
    except ValueError as exc:
        raise ValueError(f"fingerprint.{name}: {exc}") from None


@dataclass(frozen=True)
class TextPrint:
    """The keyed (sealed) fingerprint of one text, as stored and as looked up."""

    words: int
    shingles: int
    signature: U32
    anchors: list[int]  # signed 64-bit, as SQLite stores them
    anchor_sentences: list[int]
    segments: list[Segment] = field(default_factory=list, repr=False)
    anchor_positions: list[int] = field(default_factory=list, repr=False)

    @property
    def too_short(self) -> bool:
        return self.words < MIN_WORDS


def normalise(text: str) -> tuple[str, ...]:
    """NFKC, case-folded words: what every comparison sees."""
    return tuple(_WORD.findall(unicodedata.normalize("NFKC", text).casefold()))


def segments(text: str) -> list[Segment]:
    """Sentences with their offsets in ``text`` and their paragraph number."""
    # ASCII needs no NFKC and folds by lower(): one pass over the whole text
    folded = text.lower() if text.isascii() else None
    out = []
    for p_no, para in enumerate(_PARAGRAPH.finditer(text)):
        for m in _SENTENCE.finditer(text, para.start(), para.end()):
            if folded is not None:
                words = tuple(_WORD.findall(folded, m.start(), m.end()))
            else:
                words = normalise(m.group())
            if words:
                out.append(Segment(m.start(), m.end(), p_no, words))
    return out


class Keyed:
    """Keyed hashes under the soft-binding key: HMAC-SHA-256, and AES-256 for sealing."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the soft-binding key must be at least 16 bytes")
        self._mac = hmac.new(key, digestmod=hashlib.sha256)
        seal_key = hmac.new(key, b"provmark softbind seal", hashlib.sha256).digest()
        self._aes = Cipher(algorithms.AES(seal_key), modes.ECB())  # one block per value

    def digest(self, data: bytes) -> bytes:
        h = self._mac.copy()
        h.update(data)
        return h.digest()

    def int64(self, data: bytes) -> int:
        return int.from_bytes(self.digest(data)[:8], "big", signed=True)

    def uint32s(self, items: list[bytes]) -> U64:
        copy = self._mac.copy
        out = np.empty(len(items), dtype=np.uint64)
        for i, item in enumerate(items):
            h = copy()
            h.update(item)
            out[i] = int.from_bytes(h.digest()[:4], "little")
        return out

    def _encrypt(self, tag: int, values: U64) -> np.ndarray[Any, np.dtype[np.uint8]]:
        """AES-256 of one 16-byte block per value (tag, position, value): a keyed
        pseudo-random permutation, so equal inputs stay equal and nothing else shows."""
        blocks = np.zeros((values.size, 2), dtype="<u8")
        blocks[:, 0] = (np.uint64(tag) << np.uint64(56)) | np.arange(values.size, dtype=np.uint64)
        blocks[:, 1] = values
        if tag == _TAG_ANCHOR:
            blocks[:, 0] = np.uint64(tag) << np.uint64(56)  # anchors: position-free
        enc = self._aes.encryptor()
        out = enc.update(blocks.tobytes()) + enc.finalize()
        return np.frombuffer(out, dtype=np.uint8).reshape(-1, 16)

    def seal_signature(self, signature: U32) -> U32:
        """Each slot's value (with the slot number) through the keyed permutation."""
        enc = self._encrypt(_TAG_SLOT, signature.astype(np.uint64))
        return np.ascontiguousarray(enc[:, :4]).view("<u4").ravel().astype(np.uint32)

    def seal_anchors(self, anchors: U64) -> list[int]:
        enc = self._encrypt(_TAG_ANCHOR, anchors)
        sealed: list[int] = np.ascontiguousarray(enc[:, :8]).view(">i8").ravel().tolist()
        return sealed


def _mix(x: U64) -> U64:
    """splitmix64's finaliser: every input bit moves every output bit."""
    x = x ^ (x >> _U64(30))
    x = x * _U64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> _U64(27))
    x = x * _U64(0x94D049BB133111EB)
    return x ^ (x >> _U64(31))


def polynomial(codes: U64, k: int) -> U64:
    """sum(codes[i + j] * BASE ** (k - 1 - j)) mod 2**64 for every start ``i``, by doubling
    (k a power of two: log2(k) array operations instead of k); one value for a shorter text."""
    if codes.size < k:
        h = np.zeros(1, dtype=np.uint64)
        for c in codes:
            h = h * _BASE + c
        return h
    h, width = codes, 1
    while width < k:
        h = h[:-width] * (_BASE**width) + h[width:]
        width *= 2
    return h


def shingle_hashes(raw: U64, seed: np.uint64) -> U64:
    """64-bit hashes of the shingles whose polynomial values are ``raw``."""
    return _mix(raw ^ seed)


def one_permutation_minhash(hashes: U64) -> U32:
    """SLOTS minimums: the top 7 bits of a hash choose its slot, the next 32 bits compete;
    an empty slot borrows from the next filled one to its right, mixed with the distance."""
    if hashes.size == 0:
        return np.full(SLOTS, 0xFFFFFFFF, dtype=np.uint32)
    slot = (hashes >> _U64(57)).astype(np.intp)
    value = (hashes >> _U64(25)) & _U64(0xFFFFFFFF)
    mins = np.full(SLOTS, _EMPTY, dtype=np.uint64)
    np.minimum.at(mins, slot, value)
    filled = np.flatnonzero(mins != _EMPTY)
    empty = np.flatnonzero(mins == _EMPTY)
    if empty.size:
        pos = np.searchsorted(filled, empty) % filled.size
        source = filled[pos]
        distance = ((source - empty) % SLOTS).astype(np.uint64)
        mins[empty] = _mix(mins[source] ^ (distance * _SEED_SHINGLE)) & _U64(0xFFFFFFFF)
    return mins.astype(np.uint32)


def winnow(hashes: U64, window: int) -> np.ndarray[Any, np.dtype[np.intp]]:
    """Positions of the smallest hash of every ``window`` consecutive hashes (leftmost on
    ties), without repeats."""
    if hashes.size <= window:
        return np.array([int(np.argmin(hashes))], dtype=np.intp)
    views = sliding_window_view(hashes, window)
    picked: np.ndarray[Any, np.dtype[np.intp]] = views.argmin(axis=1) + np.arange(views.shape[0])
    return picked[np.concatenate(([True], picked[1:] != picked[:-1]))]  # ascending already


def sketch_segments(segs: list[Segment]) -> Sketch:
    words = sum(len(s.words) for s in segs)
    joined = "".join(" ".join(s.words) + " " for s in segs)
    if not joined:
        empty32 = np.full(SLOTS, 0xFFFFFFFF, dtype=np.uint32)
        return Sketch(0, 0, empty32, np.empty(0, np.uint64), np.empty(0, np.int32))
    codes = np.frombuffer(joined.encode("utf-32-le"), dtype="<u4").astype(np.uint64)
    # sentence of every character (the separator space belongs to the sentence before)
    lengths = [len(" ".join(s.words)) + 1 for s in segs]
    sentence_of = np.repeat(np.arange(len(segs), dtype=np.int32), lengths)
    raw = polynomial(codes, SHINGLE_CHARS)
    grams = shingle_hashes(raw, _SEED_SHINGLE)
    if grams.size == codes.size - SHINGLE_CHARS + 1:  # shingles stay inside a sentence, so
        inside = sentence_of[: grams.size] == sentence_of[SHINGLE_CHARS - 1 :]  # order is moot
        if inside.any():
            grams = grams[inside]
    grams = np.sort(grams)
    grams = grams[np.concatenate(([True], grams[1:] != grams[:-1]))]
    signature = one_permutation_minhash(grams)
    if raw.size > SHINGLE_CHARS:  # anchors: two shingles side by side
        raw = raw[:-SHINGLE_CHARS] * (_BASE**SHINGLE_CHARS) + raw[SHINGLE_CHARS:]
    else:
        raw = polynomial(codes, ANCHOR_CHARS)
    anchor_hashes = shingle_hashes(raw, _SEED_ANCHOR)
    picked = winnow(anchor_hashes, WINDOW)
    first: dict[int, int] = {}  # anchor hash -> where it first appears
    for pos, value in zip(picked.tolist(), anchor_hashes[picked].tolist(), strict=True):
        first.setdefault(value, pos)
    where = np.fromiter(first.values(), dtype=np.intp, count=len(first))[:MAX_ANCHORS]
    return Sketch(
        words=words,
        shingles=int(grams.size),
        signature=signature,
        anchors=np.fromiter(first, dtype=np.uint64, count=len(first))[:MAX_ANCHORS],
        anchor_sentences=sentence_of[where],
        anchor_positions=where,
    )


def sketch(text: str) -> Sketch:
    """The unkeyed fingerprint of ``text`` (what a client sends with its records)."""
    return sketch_segments(segments(text[:MAX_CHARS]))


def seal(sk: Sketch, keyed: Keyed, segs: list[Segment] | None = None) -> TextPrint:
    """Key a sketch: every signature slot and anchor through the keyed permutation."""
    return TextPrint(
        words=sk.words,
        shingles=sk.shingles,
        signature=keyed.seal_signature(sk.signature),
        anchors=keyed.seal_anchors(sk.anchors),
        anchor_sentences=sk.anchor_sentences.tolist(),
        segments=segs or [],
        anchor_positions=sk.anchor_positions.tolist(),
    )


def fingerprint_text(text: str, keyed: Keyed) -> TextPrint:
    segs = segments(text[:MAX_CHARS])
    return seal(sketch_segments(segs), keyed, segs)


def resemblance(a: U32, b: U32) -> float:
    """The MinHash estimate of the Jaccard similarity of two shingle sets."""
    return float(np.count_nonzero(a == b)) / SLOTS


def containment(resemblance: float, query_shingles: int, other_shingles: int) -> float:
    """Estimated share of the query's shingles that the other text also has."""
    if query_shingles <= 0:
        return 0.0
    r = resemblance
    inter = r * (query_shingles + other_shingles) / (1.0 + r)
    return min(1.0, inter / query_shingles)
