"""Lookup of scheme-1 text fingerprints (word shingles), for stores that hold them.

Scheme 1 (:mod:`.text_v1`) is no longer written, but its fingerprints cannot be rebuilt
(records keep only the hash of an output), so a store that has them keeps answering
for them: a query is fingerprinted the old way too and scored against scheme-1 items
only, exactly as before.
"""

from __future__ import annotations

from typing import Any

from . import text as txt
from . import text_v1
from .lookup_types import DERIVED_AT, MIN_SLOTS, Match, MatchedPart
from .store import FingerprintStore

CANDIDATES = 64


def match_text(store: FingerprintStore, keyed: txt.Keyed, text: str) -> list[Match]:
    tp = text_v1.fingerprint_text(text, keyed)
    if tp.too_short:
        return []
    bands = store.band_hits(tp.bands)
    by_hash: dict[int, list[text_v1.Part]] = {}
    for p in tp.parts:
        by_hash.setdefault(p.hash, []).append(p)
    pairs: dict[int, list[tuple[text_v1.Part, Any]]] = {}
    for hit in store.part_hits(list(by_hash)):
        for qp in by_hash[hit.hash]:
            if qp.kind == hit.kind:
                pairs.setdefault(hit.item, []).append((qp, hit))
    ranked = sorted(bands, key=lambda i: -bands[i])[:CANDIDATES]
    ranked += sorted(
        (i for i in pairs if i not in bands), key=lambda i: -sum(h.words for _, h in pairs[i])
    )[:CANDIDATES]
    items = store.text_items(ranked)
    matches = []
    for item in items.values():
        if item.scheme != 1:
            continue
        m = _score_text(tp, item, pairs.get(item.item, []), text)
        if m is not None:
            matches.append(m)
    return matches


def _score_text(
    tp: text_v1.TextPrint, item: Any, pairs: list[tuple[text_v1.Part, Any]], text: str
) -> Match | None:
    r = txt.resemblance(tp.signature, item.signature)
    if r * text_v1.PERMUTATIONS >= MIN_SLOTS:
        c_query = txt.containment(r, tp.shingles, item.shingles)
        c_record = txt.containment(r, item.shingles, tp.shingles)
    else:
        c_query = c_record = 0.0
    if any(qp.kind == txt.DOCUMENT for qp, _ in pairs):
        return Match(
            item.record_id,
            1.0,
            1.0,
            "same text after normalising case, spacing and Unicode",
            [MatchedPart("document", "the whole text", (0, len(text)))],
            record_coverage=1.0,
        )
    covered: set[int] = set()
    record_sentences: dict[int, int] = {}
    shown: list[MatchedPart] = []
    for qp, hit in sorted(pairs, key=lambda x: (x[0].start, -x[0].kind)):
        if qp.kind == txt.PARAGRAPH:
            idx = {i for i, s in enumerate(tp.segments) if s.paragraph == qp.ordinal}
        else:
            idx = {qp.ordinal}
            record_sentences[hit.ordinal] = hit.words
        if idx <= covered:
            continue
        covered |= idx
        snippet = " ".join(text[qp.start : qp.end].split())
        snippet = snippet if len(snippet) <= 80 else snippet[:77] + "..."
        name = txt.PART_NAMES[qp.kind]
        shown.append(
            MatchedPart(
                name,
                f'{name} {hit.ordinal + 1} of the output: "{snippet}"',
                (qp.start, qp.end),
                hit.ordinal,
            )
        )
    q_words = sum(len(tp.segments[i].words) for i in covered)
    r_words = sum(record_sentences.values())
    p_query = q_words / tp.words if q_words >= txt.MIN_WORDS else 0.0
    p_record = min(1.0, r_words / item.words) if r_words >= txt.MIN_WORDS and item.words else 0.0
    coverage = max(c_query, p_query)
    record_coverage = max(c_record, p_record)
    if max(coverage, record_coverage) < DERIVED_AT:
        return None
    if shown and r * text_v1.PERMUTATIONS >= MIN_SLOTS:
        method = "MinHash resemblance + matching sentences"
    else:
        method = "matching sentences" if shown else "MinHash resemblance"
    return Match(item.record_id, r, coverage, method, shown[:50], record_coverage=record_coverage)
