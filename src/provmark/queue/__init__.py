"""Durable queue ingest: API servers publish record batches, workers store them.

``open_queue("nats://127.0.0.1:4222")`` gives a :class:`~provmark.queue.jetstream.NatsQueue`,
``open_queue("kafka://host:9092")`` a :class:`~provmark.queue.kafka.KafkaQueue`;
:func:`~provmark.queue.worker.run_worker` consumes a queue into a :class:`~provmark.Provmark`.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from .base import (
    Batch,
    Handler,
    Queue,
    QueueError,
    decode_batch,
    encode_batch,
    wait_drained,
)

__all__ = [
    "Batch",
    "Handler",
    "Queue",
    "QueueError",
    "decode_batch",
    "encode_batch",
    "open_queue",
    "wait_drained",
]


def open_queue(url: str, **options: Any) -> Queue:
    """``nats://host:port`` (JetStream) or ``kafka://host:port[,host:port]``."""
    if url.startswith(("nats://", "tls://")):
        from .jetstream import NatsQueue

        return NatsQueue(url, **options)
    if url.startswith("kafka://"):
        from .kafka import KafkaQueue

        return KafkaQueue(url.removeprefix("kafka://"), **options)
    raise ConfigError(f"unknown queue URL {url!r}; use nats://host:port or kafka://host:port")
