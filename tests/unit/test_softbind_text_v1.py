"""Scheme-1 text fingerprints (word shingles), still computed to look up stored ones."""

from __future__ import annotations

import random

import numpy as np
import pytest

from provmark.softbind import text_v1 as txt

KEY = b"k" * 32
WORDS = [
    "model",
    "record",
    "signed",
    "log",
    "checkpoint",
    "proof",
    "audit",
    "verify",
    "output",
    "input",
    "key",
    "tree",
    "leaf",
    "root",
    "note",
    "origin",
    "witness",
    "bundle",
    "export",
    "capture",
    "writer",
    "batch",
    "queue",
    "store",
    "index",
]


def essay(seed: int, sentences: int = 12) -> str:
    rng = random.Random(seed)
    out = []
    for _ in range(sentences):
        words = [rng.choice(WORDS) for _ in range(rng.randint(7, 14))]
        out.append(" ".join(words).capitalize() + ".")
    half = sentences // 2
    return " ".join(out[:half]) + "\n\n" + " ".join(out[half:])


def test_normalise_folds_unicode_case_and_spacing() -> None:
    assert txt.normalise("Ｆｕｌｌ\u00a0WIDTH   text,\tStraße!") == (
        "full",
        "width",
        "text",
        "strasse",
    )


def test_segments_keep_offsets_and_paragraphs() -> None:
    text = "First one here. Second: a question?\n\nNew paragraph now. 3.5 stays whole."
    segs = txt.segments(text)
    assert [text[s.start : s.end] for s in segs] == [
        "First one here.",
        "Second: a question?",
        "New paragraph now.",
        "3.5 stays whole.",
    ]
    assert [s.paragraph for s in segs] == [0, 0, 1, 1]
    assert segs[3].words == ("3", "5", "stays", "whole")


def test_cjk_sentence_stops() -> None:
    segs = txt.segments("这是第一句。这是第二句！")
    assert len(segs) == 2


def test_reordering_sentences_keeps_the_signature() -> None:
    keyed = txt.Keyed(KEY)
    text = essay(1)
    sentences = [text[s.start : s.end] for s in txt.segments(text)]
    shuffled = sentences[:]
    random.Random(2).shuffle(shuffled)
    a = txt.fingerprint_text(text, keyed)
    b = txt.fingerprint_text(" ".join(shuffled), keyed)
    assert np.array_equal(a.signature, b.signature)
    assert a.bands == b.bands


def test_formatting_changes_do_not_change_anything_but_offsets() -> None:
    keyed = txt.Keyed(KEY)
    text = essay(3)
    messy = text.upper().replace(" ", "  \u00a0").replace("\n\n", "\r\n\r\n")
    a, b = txt.fingerprint_text(text, keyed), txt.fingerprint_text(messy, keyed)
    assert np.array_equal(a.signature, b.signature)
    assert [p.hash for p in a.parts] == [p.hash for p in b.parts]


def test_the_key_changes_every_hash() -> None:
    text = essay(4)
    a = txt.fingerprint_text(text, txt.Keyed(KEY))
    b = txt.fingerprint_text(text, txt.Keyed(b"another key, 32 bytes long......"))
    assert not np.array_equal(a.signature, b.signature)
    assert not set(a.bands) & set(b.bands)
    assert not {p.hash for p in a.parts} & {p.hash for p in b.parts}


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        txt.Keyed(b"short")


def test_minhash_estimates_jaccard() -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2**32, size=2000, dtype=np.uint64)
    other = np.concatenate([base[:1000], rng.integers(0, 2**32, size=1000, dtype=np.uint64)])
    true = 1000 / 3000
    est = txt.resemblance(txt.minhash(base), txt.minhash(other))
    assert abs(est - true) < 0.12  # 128 slots: standard error about 0.04


def test_containment_from_resemblance() -> None:
    # a quote of 100 shingles inside a text of 400: J = 0.25, all of the quote is contained
    assert txt.containment(0.25, 100, 400) == pytest.approx(1.0)
    assert txt.containment(0.0, 100, 400) == 0.0
    assert txt.containment(0.5, 0, 10) == 0.0


def test_parts_document_paragraphs_and_long_sentences() -> None:
    text = "Tiny. " + essay(5)
    fp = txt.fingerprint_text(text, txt.Keyed(KEY))
    kinds = [p.kind for p in fp.parts]
    assert kinds[0] == txt.DOCUMENT and kinds.count(txt.DOCUMENT) == 1
    assert kinds.count(txt.PARAGRAPH) == 2
    sentences = [p for p in fp.parts if p.kind == txt.SENTENCE]
    assert all(p.words >= txt.MIN_PART_WORDS for p in sentences)
    assert "Tiny" not in {text[p.start : p.end] for p in sentences}  # too short to identify


def test_too_short_and_empty() -> None:
    keyed = txt.Keyed(KEY)
    assert txt.fingerprint_text("", keyed).too_short
    assert txt.fingerprint_text("three little words", keyed).too_short
    assert not txt.fingerprint_text("one two three four five six seven eight", keyed).too_short
    empty = txt.fingerprint_text("", keyed)
    assert empty.shingles == 0 and empty.parts == []


def test_very_long_text_is_bounded() -> None:
    keyed = txt.Keyed(KEY)
    fp = txt.fingerprint_text(essay(6, sentences=400) * 60, keyed)
    assert fp.words > 0 and len(fp.parts) <= txt.MAX_PARTS
