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
from ..record import slug_for
from ..verify import Verified
from . import image as img
from . import text as txt
from .fingerprinter import Fingerprinter, classify
from .store import FingerprintStore

Status = Literal["identical", "derived", "no_match", "too_short"]
CANDIDATES = 64  # text items scored per lookup (most shared LSH bands / parts first)
MIN_SLOTS = 10  # MinHash slots that must agree before containment estimates count
DERIVED_AT = 0.5  # share of the content (or of the record) that must come from the record
LIMIT = 5


@dataclass(frozen=True)
class MatchedPart:
    kind: str  # document / paragraph / sentence / pixels / region
    detail: str
    query_span: tuple[int, int] | None = None  # text: character offsets in the content
    record_part: int | None = None  # text: sentence or paragraph number in the output
    box: tuple[float, float, float, float] | None = None  # image: x, y, w, h of the content

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "detail": self.detail}
        if self.query_span is not None:
            out["query_span"] = list(self.query_span)
        if self.record_part is not None:
            out["record_part"] = self.record_part
        if self.box is not None:
            out["box"] = [round(v, 4) for v in self.box]
        return out


@dataclass
class Match:
    """A record whose output this content resembles: a lead, not a proof."""

    record_id: str
    similarity: float  # 0..1: text resemblance (Jaccard estimate) or 1 - Hamming/128
    coverage: float  # share of the content found in the record's output
    method: str
    parts: list[MatchedPart] = field(default_factory=list)
    record_coverage: float | None = None  # share of the record's output found in the content
    verified: Verified | None = None  # the record itself passed signature and log checks
    record_problem: str | None = None  # or why it did not

    @property
    def slug(self) -> str:
        return slug_for(self.record_id)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "record_id": self.record_id,
            "slug": self.slug,
            "similarity": round(self.similarity, 4),
            "coverage": round(self.coverage, 4),
            "method": self.method,
            "parts": [p.to_json() for p in self.parts],
            "record_verified": self.verified is not None,
        }
        if self.record_coverage is not None:
            out["record_coverage"] = round(self.record_coverage, 4)
        if self.verified is not None:
            out["log_index"] = self.verified.index
            r = self.verified.record
            out["model"] = r.model.name
            out["model_version"] = r.model.version
            out["generated_at"] = r.generated_at
        if self.record_problem is not None:
            out["record_problem"] = self.record_problem
        return out


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
    bands = store.band_hits(tp.bands)
    by_hash: dict[int, list[txt.Part]] = {}
    for p in tp.parts:
        by_hash.setdefault(p.hash, []).append(p)
    pairs: dict[int, list[tuple[txt.Part, Any]]] = {}
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
        m = _score_text(tp, item, pairs.get(item.item, []), text)
        if m is not None:
            matches.append(m)
    matches.sort(key=lambda m: (-max(m.coverage, m.record_coverage or 0.0), -m.similarity))
    if not matches:
        return "no_match", "no record's output resembles this text", []
    return "derived", "", matches


def _score_text(
    tp: txt.TextPrint, item: Any, pairs: list[tuple[txt.Part, Any]], text: str
) -> Match | None:
    r = txt.resemblance(tp.signature, item.signature)
    if r * txt.PERMUTATIONS >= MIN_SLOTS:
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
    if shown and r * txt.PERMUTATIONS >= MIN_SLOTS:
        method = "MinHash resemblance + matching sentences"
    else:
        method = "matching sentences" if shown else "MinHash resemblance"
    return Match(item.record_id, r, coverage, method, shown[:50], record_coverage=record_coverage)


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
