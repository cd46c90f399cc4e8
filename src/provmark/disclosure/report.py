"""Disclosure coverage over a period: how many outputs carry what the law asks.

For the records generated in ``[since, until)``: outputs captured (successful
generations with an output), how many were marked (a C2PA manifest embedded or a
sidecar written, from the mark ledger), how many records carry every SB 942 field
(provider, system name and version, creation time, unique id, all signed in the
record), which fields are missing how often, and the failures (generations that
failed, markings that failed). Totals and one bucket per day, for the JSON answer
and the web UI's chart.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..record import Record
from ..store.base import Query
from .ledger import MarkLedger

if TYPE_CHECKING:
    from ..client import Provmark

MAX_RECORDS = 1_000_000


def sb942_missing(record: Record) -> list[str]:
    """The SB 942 fields a record lacks (each present one is signed with the record)."""
    m = record.model
    missing = []
    if not m.provider:
        missing.append("provider")
    if not (m.version or m.revision):
        missing.append("system_version")
    return missing  # name, creation time and unique id are always in a record


@dataclass
class Bucket:
    day: str
    captured: int = 0
    marked: int = 0
    complete: int = 0
    failures: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "day": self.day,
            "captured": self.captured,
            "marked": self.marked,
            "complete": self.complete,
            "failures": self.failures,
        }


@dataclass
class Coverage:
    since: str
    until: str
    records: int = 0
    captured: int = 0  # ok, with an output
    marked: int = 0  # of the captured: manifest embedded or sidecar written
    marked_embedded: int = 0
    marked_sidecar: int = 0
    complete: int = 0  # of the captured: every SB 942 field in the signed record
    generation_failures: int = 0
    mark_failures: int = 0
    missing: Counter[str] = field(default_factory=Counter)
    by_media: Counter[str] = field(default_factory=Counter)
    days: dict[str, Bucket] = field(default_factory=dict)
    truncated: bool = False

    def to_json(self) -> dict[str, Any]:
        def pct(n: int) -> float | None:
            return round(100.0 * n / self.captured, 1) if self.captured else None

        return {
            "since": self.since,
            "until": self.until,
            "records": self.records,
            "outputs_captured": self.captured,
            "with_manifest_or_sidecar": self.marked,
            "with_manifest_embedded": self.marked_embedded,
            "with_sidecar": self.marked_sidecar,
            "with_all_sb942_fields": self.complete,
            "percent_marked": pct(self.marked),
            "percent_sb942_complete": pct(self.complete),
            "failures": {
                "generations": self.generation_failures,
                "markings": self.mark_failures,
            },
            "missing_fields": dict(sorted(self.missing.items())),
            "outputs_by_media": dict(sorted(self.by_media.items())),
            "days": [b.to_json() for _, b in sorted(self.days.items())],
            "truncated": self.truncated,
        }


def _days(since: datetime, until: datetime) -> dict[str, Bucket]:
    out = {}
    day = since.date()
    while day <= until.date():
        out[day.isoformat()] = Bucket(day.isoformat())
        day += timedelta(days=1)
    return out


_AGE = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _when(name: str, value: str | None, moment: datetime) -> str:
    """An age (``30d``) before ``moment``, or an RFC 3339 time; ``None`` is ``moment``."""
    from ..capture.drafts import format_ns
    from ..store.base import time_filter

    if value is None:
        at = moment
    elif value.strip()[:-1].isdigit() and value.strip()[-1:] in _AGE:
        v = value.strip()
        at = moment - timedelta(**{_AGE[v[-1]]: int(v[:-1])})
    else:
        text = time_filter(name, value)
        assert text is not None
        return text
    return format_ns(int(at.timestamp() * 1_000_000) * 1000)


def coverage(
    pm: Provmark,
    *,
    since: str = "30d",
    until: str | None = None,
    now: datetime | None = None,
    max_records: int = MAX_RECORDS,
) -> Coverage:
    """Coverage of the records generated since ``since`` (an age like ``30d`` or RFC 3339)."""
    from ..export import iter_query
    from ..record import parse_time

    pm.flush()
    moment = now or datetime.now(UTC)
    start, end = _when("since", since, moment), _when("until", until, moment)
    report = Coverage(since=start, until=end)
    report.days = _days(parse_time(start), parse_time(end))
    records: list[Record] = []
    query = Query(since=start, until=end, order="asc", limit=1000)
    for n, stored in enumerate(iter_query(pm.store, query)):
        if n >= max_records:
            report.truncated = True
            break
        records.append(stored.record())
    with MarkLedger.existing(pm) as ledger:
        marks = ledger.marks([r.record_id for r in records])
    kinds: dict[str, set[str]] = {}
    for m in marks:
        kinds.setdefault(m.record_id, set()).add(m.kind)
    for r in records:
        report.records += 1
        bucket = report.days.setdefault(r.generated_at[:10], Bucket(r.generated_at[:10]))
        done = kinds.get(r.record_id, set())
        if "failed" in done:
            report.mark_failures += 1
            bucket.failures += 1
        if r.status != "ok" or not r.all_outputs():
            report.generation_failures += 1
            bucket.failures += 1
            continue
        report.captured += 1
        bucket.captured += 1
        for o in r.all_outputs():
            report.by_media[(o.media_type or "unknown").split(";")[0]] += 1
        if done & {"embedded", "sidecar"}:
            report.marked += 1
            bucket.marked += 1
            report.marked_embedded += "embedded" in done
            report.marked_sidecar += "sidecar" in done and "embedded" not in done
        missing = sb942_missing(r)
        report.missing.update(missing)
        if not missing:
            report.complete += 1
            bucket.complete += 1
    return report
