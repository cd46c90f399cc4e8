"""Dashboard aggregates: records per minute, totals by model and operation, failures.

Everything is computed through the ``Store`` protocol (SQLite and PostgreSQL alike):
the records of the chosen window are read newest first, at most ``SCAN_LIMIT`` of
them (the answer says ``truncated`` when the window held more). Answers are cached
per window for a few seconds, and only while the log has not grown, so a dashboard
that refreshes itself does not rescan the store on every request.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ..client import Provmark
from ..export.base import iter_query
from ..record import format_time, parse_time
from ..store.base import Query

SCAN_LIMIT = 100_000
CACHE_SECONDS = 5.0

# window name -> (window length, bucket length), in seconds
WINDOWS: dict[str, tuple[int, int]] = {
    "15m": (900, 60),
    "1h": (3600, 60),
    "6h": (21_600, 300),
    "24h": (86_400, 900),
    "7d": (604_800, 3600),
}


@dataclass(frozen=True)
class Row:
    """The few fields of one record the dashboard counts."""

    at: datetime
    model: tuple[str, str | None]  # name, version
    operation: str
    status: str


def row_of(payload: bytes) -> Row | None:
    """The counted fields of a stored payload, or None when it cannot be read."""
    try:
        data = json.loads(payload)
        model = data.get("model") or {}
        version = model.get("version")
        return Row(
            at=parse_time(str(data["generated_at"])),
            model=(str(model.get("name", "?")), None if version is None else str(version)),
            operation=str(data.get("operation", "?")),
            status=str(data.get("status", "ok")),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def aggregate(
    rows: list[Row], *, now: datetime, window: int, bucket: int, truncated: bool
) -> dict[str, Any]:
    """Per-bucket counts and totals of the rows of the last ``window`` seconds.

    Buckets start on whole multiples of ``bucket`` (whole minutes, quarter hours...);
    the last one holds ``now``.
    """
    epoch = now.timestamp()
    end = datetime.fromtimestamp(epoch - epoch % bucket + bucket, UTC)
    start = end - timedelta(seconds=window)
    n = window // bucket
    counts = [0] * n
    errors = [0] * n
    by_model: Counter[tuple[str, str | None]] = Counter()
    by_operation: Counter[str] = Counter()
    by_status: Counter[str] = Counter()
    for row in rows:
        offset = (row.at - start).total_seconds()
        if offset < 0:
            continue
        i = min(n - 1, int(offset // bucket))  # a clock a little ahead lands in the last bucket
        counts[i] += 1
        if row.status != "ok":
            errors[i] += 1
        by_model[row.model] += 1
        by_operation[row.operation] += 1
        by_status[row.status] += 1
    minutes = bucket / 60
    series = [
        {
            "start": format_time(start + timedelta(seconds=i * bucket)),
            "count": counts[i],
            "errors": errors[i],
            "per_minute": round(counts[i] / minutes, 3),
        }
        for i in range(n)
    ]
    return {
        "since": format_time(start),
        "until": format_time(now),
        "bucket_seconds": bucket,
        "series": series,
        "records": sum(counts),
        "truncated": truncated,
        "by_model": [
            {"name": name, "version": version, "count": v}
            for (name, version), v in by_model.most_common()
        ],
        "by_operation": [{"operation": k, "count": v} for k, v in by_operation.most_common()],
        "by_status": dict(by_status),
        "peak_per_minute": round(max(counts, default=0) / minutes, 3),
    }


def window_rows(pm: Provmark, since: datetime, limit: int = SCAN_LIMIT) -> tuple[list[Row], bool]:
    """The rows generated since ``since`` (newest first, at most ``limit``) and whether
    the window held more."""
    query = Query(since=format_time(since), limit=1000, order="desc")
    rows: list[Row] = []
    for seen, stored in enumerate(iter_query(pm.store, query, limit=limit + 1), 1):
        if seen > limit:
            return rows, True
        row = row_of(stored.payload)
        if row is not None:
            rows.append(row)
    return rows, False


def checkpoint_status(pm: Provmark, now: datetime) -> dict[str, Any] | None:
    cp = pm.store.latest_checkpoint()
    if cp is None:
        return None
    try:
        age: float | None = max(0.0, (now - parse_time(cp.created_at)).total_seconds())
    except ValueError:
        age = None
    return {"size": cp.size, "created_at": cp.created_at, "age_seconds": age}


@dataclass
class DashboardCache:
    """Answers per window, reused while fresh and while the log has not grown."""

    seconds: float = CACHE_SECONDS
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _entries: dict[str, tuple[float, int, dict[str, Any]]] = field(default_factory=dict)

    def get(self, window: str, tree_size: int) -> dict[str, Any] | None:
        with self._lock:
            entry = self._entries.get(window)
        if entry is None:
            return None
        at, size, answer = entry
        if size != tree_size or time.monotonic() - at > self.seconds:
            return None
        return answer

    def put(self, window: str, tree_size: int, answer: dict[str, Any]) -> None:
        with self._lock:
            self._entries[window] = (time.monotonic(), tree_size, answer)


def activity(
    pm: Provmark,
    window: str,
    cache: DashboardCache,
    *,
    now: datetime | None = None,
    limit: int = SCAN_LIMIT,
) -> dict[str, Any]:
    """Records per bucket and totals over ``window`` (one of ``WINDOWS``)."""
    span, bucket = WINDOWS[window]
    size = pm.store.tree_size()
    if now is None:
        cached = cache.get(window, size)
        if cached is not None:
            return cached
    moment = now or datetime.now(UTC)
    rows, truncated = window_rows(pm, moment - timedelta(seconds=span + bucket), limit)
    answer = {
        "window": window,
        **aggregate(rows, now=moment, window=span, bucket=bucket, truncated=truncated),
    }
    if now is None:
        cache.put(window, size, answer)
    return answer
