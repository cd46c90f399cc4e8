"""``fuzzy_verify``: find the record of content that was edited, quoted or re-encoded.

The answer is one of

* ``identical`` -- the bytes are an output's: :meth:`Provmark.verify` proved it
  (signature, key validity, log inclusion). This is proof.
* ``derived``   -- the content resembles outputs whose fingerprints match; each
  :class:`Match` says how similar, how much of the content it covers and which
  parts match. The matched *record* is itself verified (signed and logged), but
  the link between this content and that record is a lead, not a proof:
  fingerprints can be fooled both ways.
* ``no_match``  -- neither.
* ``too_short`` -- too little text (or too plain an image) to say anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import CaptureError, VerificationError
from ..verify import Verified
from . import image as img
from . import lookup_v1
from . import text as txt
from .fingerprinter import Fingerprinter, classify
from .lookup_types import DERIVED_AT, Match, MatchedPart
from .store import FingerprintStore

Status = Literal["identical", "derived", "no_match", "too_short"]
CANDIDATES = 64  # text items scored per lookup (most shared anchors first)
LIMIT = 5
# a text is derived from a record when they share at least QUOTE_ANCHORS anchors that
# are DERIVED_AT of the query's anchors (or of the record's) and cover QUOTE_CHARS
# characters of the normalised query (a stock phrase of six words does not), or when
# they share NEAR_ANCHORS anchors and their MinHash resemblance is NEAR_RESEMBLANCE;
# calibrated on the two corpora of bench/bench_softbind.py (docs/soft-binding.md)
QUOTE_ANCHORS = 4
QUOTE_CHARS = 50
NEAR_ANCHORS = 3
NEAR_RESEMBLANCE = 0.35
COMMON_ANCHOR = 1000  # an anchor found in more stored texts than this says nothing


@dataclass
class FuzzyResult:
    status: Status
    kind: str | None  # "text" / "image"; None when exact before classifying
    detail: str
    exact: Verified | None = None
    matches: list[Match] = field(default_factory=list)

    @property
    def proven(self) -> bool:
        """True only for ``identical``: everything else is a lead or nothing."""
        return self.status == "identical"

    @property
    def best(self) -> Match | None:
        return self.matches[0] if self.matches else None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": self.status,
            "proven": self.proven,
            "kind": self.kind,
            "detail": self.detail,
        }
        if self.exact is not None:
            out["exact"] = self.exact.to_json()
        out["matches"] = [m.to_json() for m in self.matches]
        return out


def fuzzy_verify(
    pm: Any,
    content: Any,
    *,
    media_type: str | None = None,
    fingerprinter: Fingerprinter | None = None,
    limit: int = LIMIT,
) -> FuzzyResult:
    """Exact verification first; failing that, the records this content was derived from."""
    try:
        exact = pm.verify(content)
    except VerificationError as exc:
        if exc.check != "output_hash":
            raise  # a record matched by hash but failed a check: that is the answer
    except CaptureError:
        pass  # an object with no byte form (a PIL image): fingerprints only
    else:
        r = exact.record
        return FuzzyResult(
            "identical",
            None,
            f"identical to the output of record {r.slug} ({r.record_id}): signed and logged",
            exact=exact,
        )
    kind, source = classify(content, media_type)
    fp = fingerprinter or getattr(pm, "fingerprinter", None)
    own = fp is None
    if fp is None:
        fp = Fingerprinter.for_provmark(pm)
    else:
        fp.flush()
    try:
        if kind == "text":
            status, detail, matches = match_text(fp.store, fp.keyed, source)
        else:
            status, detail, matches = match_image(fp.store, fp.keyed, source)
    finally:
        if own:
            fp.close()
    checked = _check_records(pm, matches, limit)
    if status == "derived" and not checked:
        status, detail = "no_match", "fingerprints matched, but their records are not in this store"
    elif checked:
        detail = _describe(checked[0], kind)
    return FuzzyResult(status, kind, detail, matches=checked)


def _check_records(pm: Any, matches: list[Match], limit: int) -> list[Match]:
    out: list[Match] = []
    for m in matches:
        if len(out) >= limit:
            break
        stored = pm.store.get(m.record_id)
        if stored is None:
            continue  # fingerprinted, but the record never reached the store
        report = pm.verification(None, record_id=stored.record_id)  # revocations apply too
        if report.verified:
            m.verified = report.outcome
        else:
            failed = report.failed
            m.record_problem = f"{failed.name}: {failed.detail}" if failed else "not verified"
        out.append(m)
    return out


def _describe(m: Match, kind: str) -> str:
    head = f"derived from record {m.slug} ({m.record_id}): similarity {m.similarity:.2f}"
    if kind == "text":
        head += f", {m.coverage:.0%} of this text found in it"
    head += f" [{m.method}]; a fuzzy lead, not a proof"
    if m.record_problem:
        head += f"; the record itself FAILED {m.record_problem}"
    return head


# ---------------------------------------------------------------- text


def match_text(
    store: FingerprintStore, keyed: txt.Keyed, text: str
) -> tuple[Status, str, list[Match]]:
    tp = txt.fingerprint_text(text, keyed)
    if tp.too_short:
        return (
            "too_short",
            f"text too short to look up: {tp.words} words (fingerprints need {txt.MIN_WORDS})",
            [],
        )
    matches = _match_anchors(store, tp, text)
    if store.legacy_text:
        found = {m.record_id for m in matches}
        matches += [m for m in lookup_v1.match_text(store, keyed, text) if m.record_id not in found]
    matches.sort(key=lambda m: (-max(m.coverage, m.record_coverage or 0.0), -m.similarity))
    if not matches:
        return "no_match", "no record's output resembles this text", []
    return "derived", "", matches


def _match_anchors(store: FingerprintStore, tp: txt.TextPrint, text: str) -> list[Match]:
    position = {h: i for i, h in enumerate(tp.anchors)}
    hits = [h for h in store.part_hits(tp.anchors) if h.kind == txt.ANCHOR]
    found_in: dict[int, int] = {}
    for h in hits:
        found_in[h.hash] = found_in.get(h.hash, 0) + 1
    # item -> {query anchor number: sentence of the record it is in}
    shared: dict[int, dict[int, int]] = {}
    for h in hits:
        if found_in[h.hash] <= COMMON_ANCHOR:
            shared.setdefault(h.item, {})[position[h.hash]] = h.ordinal
    ranked = sorted(shared, key=lambda i: -len(shared[i]))[:CANDIDATES]
    matches = []
    for item in store.text_items(ranked).values():
        if item.scheme == txt.SCHEME:
            m = _score(tp, item, shared[item.item], text)
            if m is not None:
                matches.append(m)
    return matches


def _score(tp: txt.TextPrint, item: Any, shared: dict[int, int], text: str) -> Match | None:
    n = len(shared)
    r = txt.resemblance(tp.signature, item.signature)
    c_query = n / max(1, len(tp.anchors))
    c_record = n / max(1, item.anchors)
    near = r >= NEAR_RESEMBLANCE and n >= NEAR_ANCHORS
    quoted = n >= QUOTE_ANCHORS and max(c_query, c_record) >= DERIVED_AT
    if quoted and not near:
        spans = sorted(tp.anchor_positions[q] for q in shared)
        covered, reach = 0, 0
        for start in spans:  # characters of the query inside a shared anchor
            covered += max(0, start + txt.ANCHOR_CHARS - max(start, reach))
            reach = max(reach, start + txt.ANCHOR_CHARS)
        quoted = covered >= QUOTE_CHARS
    if not (near or quoted):
        return None
    if near:  # MinHash containment: what share of the characters' shingles is shared
        c_query = max(c_query, txt.containment(r, tp.shingles, item.shingles))
        c_record = max(c_record, txt.containment(r, item.shingles, tp.shingles))
    if r == 1.0 and n == len(tp.anchors) == item.anchors:
        part = MatchedPart("document", "the whole text", (0, len(text)))
        return Match(
            item.record_id,
            1.0,
            1.0,
            "same text after normalising case, spacing and Unicode",
            [part],
            record_coverage=1.0,
        )
    by_sentence: dict[int, int] = {}  # query sentence -> a record sentence it shares with
    for q, rec_sentence in sorted(shared.items()):
        by_sentence.setdefault(tp.anchor_sentences[q], rec_sentence)
    shown = []
    for q_sentence, rec_sentence in sorted(by_sentence.items()):
        seg = tp.segments[q_sentence]
        snippet = " ".join(text[seg.start : seg.end].split())
        snippet = snippet if len(snippet) <= 80 else snippet[:77] + "..."
        shown.append(
            MatchedPart(
                "sentence",
                f'sentence {rec_sentence + 1} of the output shares text with "{snippet}"',
                (seg.start, seg.end),
                rec_sentence,
            )
        )
    method = f"{n} shared passages (winnowed anchors)"
    if near:
        method += " + MinHash resemblance"
    return Match(item.record_id, r, min(1.0, c_query), method, shown[:50], min(1.0, c_record))


# ---------------------------------------------------------------- images


def match_image(
    store: FingerprintStore, keyed: txt.Keyed, content: Any
) -> tuple[Status, str, list[Match]]:
    ip, probes = img.query_probes(content, keyed)
    same_pixels = {h.item for h in store.part_hits([ip.pixels]) if h.kind == txt.PIXELS}
    if ip.too_plain and not same_pixels:
        return "too_short", ip.too_plain, []
    # item -> (pHash + dHash distance, pHash distance, dHash distance, probe, region)
    best: dict[int, tuple[int, int, int, int, int]] = {}
    for hit in store.code_hits(probes):
        d = hit.phash_distance + hit.dhash_distance
        if hit.item not in best or d < best[hit.item][0]:
            best[hit.item] = (d, hit.phash_distance, hit.dhash_distance, hit.probe, hit.region)
    records = store.records(set(best) | same_pixels)
    matches: list[Match] = []
    for item in same_pixels:
        if item in records:
            part = MatchedPart(
                "pixels", "decoded pixels identical (metadata stripped or re-wrapped)"
            )
            matches.append(Match(records[item], 1.0, 1.0, "same pixels", [part], 1.0))
    for item, (d, pd, dd, probe_no, region) in sorted(best.items(), key=lambda kv: kv[1][0]):
        if item in same_pixels or item not in records:
            continue
        probe = probes[probe_no]
        x, y, w, h = probe.box
        where = (
            "the whole image"
            if (w, h) == (1.0, 1.0)
            else "the window " + (f"x={x:.0%} y={y:.0%} w={w:.0%} h={h:.0%} of this image")
        )
        part = MatchedPart(
            "region",
            f"{where} matches the {img.REGION_NAMES[region]} of the output "
            f"(Hamming distance pHash {pd}, dHash {dd} of 64 bits)",
            box=probe.box,
        )
        matches.append(
            Match(records[item], 1.0 - d / 128.0, w * h, "perceptual hash (pHash + dHash)", [part])
        )
    if not matches:
        return "no_match", "no record's output looks like this image", []
    return "derived", "", matches
