"""The durable-queue contract between API servers (publish) and workers (consume).

A batch of records travels as one or more messages, each a JSON array of
record objects no larger than the broker's message limit. ``publish`` returns
only after the broker has persisted every message of the batch. Consumers get
at-least-once delivery and acknowledge a message only after the handler has
stored its records; record ids make storing idempotent, so every record is
stored exactly once however often it is delivered.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from ..errors import StoreError

Batch = list[dict[str, Any]]
Handler = Callable[[Batch], Sequence[dict[str, Any]] | None]
"""Stores a batch; returns what it rejects for good, or None: dead letters, each
``{"reason": why, "record": the record}``, which the queue publishes to its dead-letter
stream (NATS ``<subject>.dead``, Kafka ``<topic>.dead``).

Raising means "not stored, deliver again later".
"""

DEFAULT_MAX_BYTES = 900_000  # under NATS' and Kafka's default 1 MiB message limit


class QueueError(StoreError):
    """The queue cannot be reached, or did not persist or deliver a batch."""


@runtime_checkable
class Queue(Protocol):
    """A durable queue of record batches."""

    url: str

    def publish(self, batch: Batch) -> None:
        """Persist a batch; return only when the broker has stored all of it."""
        ...

    async def apublish(self, batch: Batch) -> None:
        """:meth:`publish` for asyncio callers (does not block their event loop)."""
        ...

    def consume(self, handler: Handler, *, stop: threading.Event | None = None) -> None:
        """Deliver batches to ``handler`` until ``stop`` is set; ack each after it returns."""
        ...

    def pending(self) -> int:
        """Messages (batches) published but not yet acknowledged by a consumer: the lag."""
        ...

    def close(self) -> None: ...


def encode_batch(
    batch: Sequence[dict[str, Any]], max_bytes: int = DEFAULT_MAX_BYTES
) -> list[bytes]:
    """Split a batch into JSON arrays of at most ``max_bytes`` each (order kept)."""
    chunks: list[bytes] = []
    parts: list[bytes] = []
    used = 2  # the brackets
    for i, record in enumerate(batch):
        if not isinstance(record, dict):
            raise QueueError(
                f"[{i}]: each record must be a JSON object, not {type(record).__name__}"
            )
        try:
            part = json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()
        except (TypeError, ValueError) as exc:
            raise QueueError(f"[{i}]: record is not JSON-serialisable: {exc}") from None
        if len(part) + 2 > max_bytes:
            raise QueueError(
                f"[{i}]: record is {len(part)} bytes of JSON, over the message limit of {max_bytes}"
            )
        if parts and used + len(part) + 1 > max_bytes:
            chunks.append(b"[" + b",".join(parts) + b"]")
            parts, used = [], 2
        used += len(part) + (1 if parts else 0)
        parts.append(part)
    if parts:
        chunks.append(b"[" + b",".join(parts) + b"]")
    return chunks


def decode_batch(data: bytes) -> Batch:
    """The records of one message; ``QueueError`` when it is not a JSON array of objects."""
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise QueueError(f"message is not JSON: {exc}") from None
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise QueueError("message is not a JSON array of record objects")
    return value


def message_id(chunk: bytes) -> str:
    """A stable id for broker-side deduplication of a retried publish."""
    return hashlib.sha256(chunk).hexdigest()[:32]


def wait_drained(queue: Queue, timeout: float = 60.0, poll: float = 0.05) -> float:
    """Block until the queue's lag is 0; return the seconds it took."""
    start = time.monotonic()
    while (left := queue.pending()) > 0:
        if time.monotonic() - start > timeout:
            raise QueueError(f"queue {queue.url} not drained after {timeout}s ({left} pending)")
        time.sleep(poll)
    return time.monotonic() - start
