"""Durable queue ingest: API servers publish record batches, workers store them.

``open_queue("nats://127.0.0.1:4222")`` gives a :class:`~provmark.queue.jetstream.NatsQueue`,
``open_queue("kafka://host:9092")`` a :class:`~provmark.queue.kafka.KafkaQueue`;
:func:`~provmark.queue.worker.run_worker` consumes a queue into a :class:`~provmark.Provmark`.
"""

from .base import (
    Batch,
    Handler,
    Queue,
    QueueError,
    decode_batch,
    encode_batch,
    open_queue,
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
