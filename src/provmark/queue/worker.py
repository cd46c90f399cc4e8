"""The worker: consume batches from a queue and store them with ``Provmark.ingest``.

Delivery is at-least-once and ``ingest`` is idempotent by record id, so each
record is stored exactly once. A batch is acknowledged only after ``ingest``
returned, i.e. after the records are committed to the store and logged.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import InvalidBatch, RecordsRefused
from .base import Batch, Queue

if TYPE_CHECKING:
    from ..client import Provmark

log = logging.getLogger("provmark.worker")


@dataclass
class WorkerStats:
    batches: int = 0
    records: int = 0
    rejected: int = 0


def store_batch(pm: Provmark, batch: Batch, timeout: float = 120.0) -> list[dict[str, Any]]:
    """Ingest a batch; return the records that can never be stored, as dead letters
    ``{"reason": ..., "record": ...}`` (the queue publishes them to its dead-letter stream).

    The server acknowledged these records already (202), so one bad record does not hold
    back the others: the records the door refuses (``intake``, the same validation as the
    server's) and those the store refuses (dead-lettered by the writer) are returned, the
    rest stored. A record delivered twice in one batch is stored once.
    """
    unique = _first_of_each_id(batch)
    dead: list[dict[str, Any]] = []
    try:
        pm.ingest(unique, timeout=timeout)
        return []
    except InvalidBatch as exc:
        bad: dict[int, str] = {}
        for field, reason in exc.errors:
            bad.setdefault(int(field[1 : field.index("]")]), f"{field}: {reason}")
        for i, reason in bad.items():
            log.error("record %s rejected for good: %s", _id(unique[i]), reason)
            dead.append({"reason": reason, "record": unique[i]})
        unique = [r for i, r in enumerate(unique) if i not in bad]
    except RecordsRefused as exc:
        return _refused(unique, exc)
    if unique:
        try:
            pm.ingest(unique, timeout=timeout)
        except RecordsRefused as exc:
            dead.extend(_refused(unique, exc))
    return dead


def _first_of_each_id(batch: Batch) -> Batch:
    seen: set[str] = set()
    out: Batch = []
    for record in batch:
        rid = record.get("record_id") if isinstance(record, Mapping) else None
        if isinstance(rid, str):
            if rid in seen:
                continue
            seen.add(rid)
        out.append(record)
    return out


def _refused(batch: Batch, exc: RecordsRefused) -> list[dict[str, Any]]:
    out = []
    for record in batch:
        reason = exc.refused.get(_id(record))
        if reason is not None:
            log.error("record %s refused by the store for good: %s", _id(record), reason)
            out.append({"reason": f"refused by the store: {reason}", "record": record})
    return out


def _id(record: Mapping[str, Any]) -> str:
    return str(record.get("record_id", "?")) if isinstance(record, Mapping) else "?"


def run_worker(
    queue: Queue,
    pm: Provmark,
    *,
    stop: threading.Event | None = None,
    stats: WorkerStats | None = None,
    timeout: float = 120.0,
) -> WorkerStats:
    """Store batches from ``queue`` into ``pm`` until ``stop`` is set; return counts."""
    stats = stats if stats is not None else WorkerStats()

    def handle(batch: Batch) -> Sequence[dict[str, Any]]:
        rejected = store_batch(pm, batch, timeout)
        stats.batches += 1
        stats.records += len(batch) - len(rejected)
        stats.rejected += len(rejected)
        return rejected

    queue.consume(handle, stop=stop)
    return stats


def stop_on_signals(stop: threading.Event) -> None:
    """Set ``stop`` on SIGTERM/SIGINT (main thread only): finish the batch, then exit."""

    def handler(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping after the current batch", signum)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
