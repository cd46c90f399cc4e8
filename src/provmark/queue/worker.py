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

from ..errors import RecordError
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
    """Ingest a batch; return the records that can never be stored (invalid).

    One invalid record does not hold back the valid ones of its batch: they are
    stored, the invalid ones returned (the queue dead-letters them).
    """
    try:
        pm.ingest(batch, timeout=timeout)
        return []
    except RecordError:
        pass
    rejected: list[dict[str, Any]] = []
    for record in batch:
        try:
            pm.ingest([record], wait=False)
        except RecordError as exc:
            log.error("record %s rejected for good: %s", _id(record), exc)
            rejected.append(record)
    pm.flush(timeout)
    return rejected


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
