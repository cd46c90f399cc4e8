"""What a fuzzy lookup answers: :class:`Match` and :class:`MatchedPart`, and thresholds
shared by both text schemes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..record import slug_for
from ..verify import Verified

MIN_SLOTS = 10  # MinHash slots that must agree before containment estimates count
DERIVED_AT = 0.5  # share of the content (or of the record) that must come from the record


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
