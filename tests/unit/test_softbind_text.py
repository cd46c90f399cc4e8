"""Text fingerprints (scheme 2): character shingles, one-permutation MinHash, anchors."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from provmark.softbind import text as txt

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


def typo(text: str, rate: float, seed: int) -> str:
    rng = random.Random(seed)
    return "".join(
        rng.choice("abcdefghijklmnopqrstuvwxyz") if c.isalpha() and rng.random() < rate else c
        for c in text
    )


def test_reordering_sentences_keeps_the_signature() -> None:
    keyed = txt.Keyed(KEY)
    text = essay(1)
    sentences = [text[s.start : s.end] for s in txt.segments(text)]
    shuffled = sentences[:]
    random.Random(2).shuffle(shuffled)
    a = txt.fingerprint_text(text, keyed)
    b = txt.fingerprint_text(" ".join(shuffled), keyed)
    assert np.array_equal(a.signature, b.signature)
    assert len(set(a.anchors) & set(b.anchors)) >= 0.7 * len(a.anchors)


def test_formatting_changes_do_not_change_anything_but_offsets() -> None:
    keyed = txt.Keyed(KEY)
    text = essay(3)
    messy = text.upper().replace(" ", "  \u00a0").replace("\n\n", "\r\n\r\n")
    a, b = txt.fingerprint_text(text, keyed), txt.fingerprint_text(messy, keyed)
    assert np.array_equal(a.signature, b.signature)
    assert a.anchors == b.anchors and a.anchor_sentences == b.anchor_sentences


def test_the_key_changes_every_hash() -> None:
    text = essay(4)
    a = txt.fingerprint_text(text, txt.Keyed(KEY))
    b = txt.fingerprint_text(text, txt.Keyed(b"another key, 32 bytes long......"))
    assert np.count_nonzero(a.signature == b.signature) <= 2
    assert not set(a.anchors) & set(b.anchors)


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        txt.Keyed(b"short")


def test_one_permutation_minhash_estimates_jaccard() -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2**63, size=2000, dtype=np.uint64) * np.uint64(2)
    other = np.concatenate([base[:1000], rng.integers(0, 2**63, size=1000, dtype=np.uint64)])
    true = 1000 / 3000
    est = txt.resemblance(txt.one_permutation_minhash(base), txt.one_permutation_minhash(other))
    assert abs(est - true) < 0.12  # 128 slots: standard error about 0.04
    few = txt.one_permutation_minhash(base[:20])  # most slots empty: filled from neighbours
    assert np.count_nonzero(few == 0xFFFFFFFF) == 0
    assert txt.resemblance(few, txt.one_permutation_minhash(base[:20].copy())) == 1.0


def test_containment_from_resemblance() -> None:
    # a quote of 100 shingles inside a text of 400: J = 0.25, all of the quote is contained
    assert txt.containment(0.25, 100, 400) == pytest.approx(1.0)
    assert txt.containment(0.0, 100, 400) == 0.0
    assert txt.containment(0.5, 0, 10) == 0.0


def test_every_anchor_of_an_exact_quote_is_an_anchor_of_its_source() -> None:
    keyed = txt.Keyed(KEY)
    text = essay(5)
    words = text.split()
    for start in range(0, len(words) - 12, 7):
        quote = " ".join(words[start : start + 12])
        q = txt.fingerprint_text(quote, keyed)
        assert q.anchors and set(q.anchors) <= set(txt.fingerprint_text(text, keyed).anchors)


def test_typos_keep_most_of_the_signature_and_anchors() -> None:
    keyed = txt.Keyed(KEY)
    text = essay(7, sentences=20)
    a, b = txt.fingerprint_text(text, keyed), txt.fingerprint_text(typo(text, 0.03, 1), keyed)
    assert txt.resemblance(a.signature, b.signature) > 0.4
    assert len(set(a.anchors) & set(b.anchors)) > 0.3 * len(a.anchors)


def test_anchors_name_their_sentence() -> None:
    text = essay(8)
    fp = txt.fingerprint_text(text, txt.Keyed(KEY))
    assert len(fp.anchor_sentences) == len(fp.anchors) == len(fp.anchor_positions)
    assert set(fp.anchor_sentences) == set(range(len(fp.segments)))


def test_a_client_sketch_round_trips_and_seals_to_the_same_fingerprint() -> None:
    keyed = txt.Keyed(KEY)
    text = essay(9)
    sk = txt.sketch(text)
    back = txt.Sketch.from_json(json.loads(json.dumps(sk.to_json())))
    sealed, direct = txt.seal(back, keyed), txt.fingerprint_text(text, keyed)
    assert np.array_equal(sealed.signature, direct.signature)
    assert sealed.anchors == direct.anchors and sealed.words == direct.words
    assert not set(direct.anchors) & {int(a) for a in sk.anchors.view(np.int64)}  # keyed


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"scheme": 1}, "scheme"),
        ({"minhash": "AAAA"}, "minhash"),
        ({"anchors": "not base64!"}, "anchors"),
        ({"words": -1}, "words"),
        ({"shingles": "many"}, "shingles"),
    ],
)
def test_a_malformed_sketch_names_the_field(change: dict[str, object], field: str) -> None:
    data = {**txt.sketch(essay(10)).to_json(), **change}
    with pytest.raises(ValueError, match=field):
        txt.Sketch.from_json(data)


def test_too_short_and_empty() -> None:
    keyed = txt.Keyed(KEY)
    assert txt.fingerprint_text("", keyed).too_short
    assert txt.fingerprint_text("three little words", keyed).too_short
    assert not txt.fingerprint_text("one two three four five six seven eight", keyed).too_short
    empty = txt.fingerprint_text("", keyed)
    assert empty.shingles == 0 and empty.anchors == []


def test_very_long_text_is_bounded() -> None:
    keyed = txt.Keyed(KEY)
    fp = txt.fingerprint_text(essay(6, sentences=400) * 60, keyed)
    assert fp.words > 0 and len(fp.anchors) <= txt.MAX_ANCHORS
