"""Kafka queue (confluent-kafka) behind the same interface as the JetStream one.

Not integration-tested in this repository: no Kafka broker can run on the
machine that builds it. Configuration, serialisation, offset bookkeeping and
error mapping are unit-tested against the real client without a broker.

Publishing uses an idempotent producer with ``acks=all``: ``publish`` returns
once every in-sync replica has the batch. Workers share one consumer group,
commit offsets only after the handler stored a batch (at-least-once) and, when
the handler fails, seek back so the batch is delivered again.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from ..errors import ConfigError
from .base import Batch, Handler, QueueError, decode_batch, encode_batch, message_id

log = logging.getLogger("provmark.queue")

_HINTS = {
    KafkaError._ALL_BROKERS_DOWN: "no broker reachable",
    KafkaError._TRANSPORT: "connection to the broker failed",
    KafkaError._MSG_TIMED_OUT: "the broker did not acknowledge it in time",
    KafkaError._TIMED_OUT: "the broker did not answer in time",
    KafkaError._UNKNOWN_TOPIC: "the topic does not exist (create it or allow auto-creation)",
    KafkaError.UNKNOWN_TOPIC_OR_PART: "the topic does not exist (create it or allow auto-creation)",
    KafkaError.TOPIC_AUTHORIZATION_FAILED: "not authorised for the topic",
    KafkaError.MSG_SIZE_TOO_LARGE: "message over the broker's message.max.bytes",
    KafkaError.NOT_ENOUGH_REPLICAS: "fewer in-sync replicas than min.insync.replicas",
}


def kafka_error(err: KafkaError | KafkaException, doing: str) -> QueueError:
    """A :class:`QueueError` naming what failed, Kafka's code and a hint."""
    if isinstance(err, KafkaException):
        inner = err.args[0] if err.args else None
        if not isinstance(inner, KafkaError):
            return QueueError(f"kafka: {doing} failed: {err}")
        err = inner
    hint = _HINTS.get(err.code())
    text = f"kafka: {doing} failed: {err.name()}: {err.str()}"
    if hint:
        text += f" ({hint})"
    if err.retriable():
        text += "; retriable"
    return QueueError(text)


def next_offsets(msgs: Sequence[Message]) -> list[TopicPartition]:
    """Offsets to commit after ``msgs`` were handled: last offset + 1 per partition."""
    last: dict[tuple[str, int], int] = {}
    for m in msgs:
        key = (str(m.topic()), int(m.partition() or 0))
        last[key] = max(last.get(key, -1), int(m.offset() or 0))
    return [TopicPartition(t, p, o + 1) for (t, p), o in sorted(last.items())]


def first_offsets(msgs: Sequence[Message]) -> list[TopicPartition]:
    """Where to seek to deliver ``msgs`` again: first offset per partition."""
    first: dict[tuple[str, int], int] = {}
    for m in msgs:
        key = (str(m.topic()), int(m.partition() or 0))
        offset = int(m.offset() or 0)
        first[key] = min(first.get(key, offset), offset)
    return [TopicPartition(t, p, o) for (t, p), o in sorted(first.items())]


def lag(committed: int, low: int, high: int) -> int:
    """Messages not yet consumed in one partition (committed < 0 means none yet)."""
    start = committed if committed >= 0 else low
    return max(0, high - max(start, low))


class KafkaQueue:
    """A :class:`~provmark.queue.base.Queue` on Kafka topics ``topic`` and ``topic.dead``."""

    def __init__(
        self,
        bootstrap: str = "127.0.0.1:9092",
        *,
        topic: str = "provmark.records",
        group: str = "provmark-worker",
        config: Mapping[str, Any] | None = None,
        timeout: float = 10.0,
        fetch: int = 8,
        max_bytes: int = 900_000,
    ) -> None:
        if timeout <= 0 or fetch < 1:
            raise ConfigError("timeout must be positive and fetch at least 1")
        self.url = f"kafka://{bootstrap}"
        self.topic = topic
        self.dead_topic = f"{topic}.dead"
        self.group = group
        self.timeout = timeout
        self.fetch = fetch
        self.max_bytes = max_bytes
        common = {"bootstrap.servers": bootstrap, **(config or {})}
        self.producer_config = {
            **common,
            "acks": "all",
            "enable.idempotence": True,
            "message.timeout.ms": int(timeout * 1000),
            "linger.ms": 2,
        }
        self.consumer_config = {
            **common,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "max.poll.interval.ms": 600_000,
        }
        self._lock = threading.Lock()
        self._producer = _make(Producer, self.producer_config, "producer")
        self._lag_consumer: Consumer | None = None

    def __repr__(self) -> str:
        return f"KafkaQueue({self.url!r}, topic={self.topic!r})"

    # ------------------------------------------------------------ publish
    def publish(self, batch: Batch) -> None:
        self._produce(self.topic, encode_batch(batch, self.max_bytes))

    async def apublish(self, batch: Batch) -> None:
        await asyncio.to_thread(self.publish, batch)

    def _produce(self, topic: str, chunks: Sequence[bytes]) -> None:
        errors: list[KafkaError] = []

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                errors.append(err)

        with self._lock:
            for chunk in chunks:
                try:
                    self._producer.produce(
                        topic, value=chunk, key=message_id(chunk), on_delivery=delivered
                    )
                except BufferError:
                    self._producer.poll(0.1)  # local queue full: serve callbacks, retry once
                    self._producer.produce(
                        topic, value=chunk, key=message_id(chunk), on_delivery=delivered
                    )
                except KafkaException as exc:
                    raise kafka_error(exc, f"publishing to {topic}") from None
            left = self._producer.flush(self.timeout + 1)
        if errors:
            raise kafka_error(errors[0], f"publishing {len(errors)} message(s) to {topic}")
        if left:
            raise QueueError(
                f"kafka: {left} message(s) to {topic} not acknowledged in {self.timeout}s"
            )

    # ------------------------------------------------------------ consume
    def consume(self, handler: Handler, *, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        consumer = _make(Consumer, self.consumer_config, "consumer")
        consumer.subscribe([self.topic])
        delay = 0.1
        try:
            while not stop.is_set():
                msgs = self._poll(consumer)
                if not msgs:
                    continue
                records: Batch = []
                for m in msgs:
                    try:
                        records.extend(decode_batch(m.value() or b""))
                    except QueueError as exc:
                        log.error("kafka: undecodable message at offset %s: %s", m.offset(), exc)
                        self._produce(self.dead_topic, [m.value() or b""])
                try:
                    rejected = handler(records) if records else None
                except Exception as exc:
                    log.error(
                        "provmark worker: %d records not stored, will retry: %s", len(records), exc
                    )
                    for tp in first_offsets(msgs):
                        consumer.seek(tp)
                    stop.wait(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                delay = 0.1
                if rejected:
                    self._produce(self.dead_topic, encode_batch(list(rejected), self.max_bytes))
                try:
                    consumer.commit(offsets=next_offsets(msgs), asynchronous=False)
                except KafkaException as exc:
                    # Delivered again after a rebalance; storing is idempotent.
                    log.warning("%s", kafka_error(exc, "committing offsets"))
        finally:
            consumer.close()

    def _poll(self, consumer: Consumer) -> list[Message]:
        good = []
        for m in consumer.consume(num_messages=self.fetch, timeout=1.0):
            err = m.error()
            if err is None:
                good.append(m)
            elif err.fatal():
                raise kafka_error(err, f"consuming {self.topic}")
            elif err.code() != KafkaError._PARTITION_EOF:
                log.warning("%s", kafka_error(err, f"consuming {self.topic}"))
        return good

    # ------------------------------------------------------------ lag
    def pending(self) -> int:
        with self._lock:
            if self._lag_consumer is None:
                self._lag_consumer = _make(Consumer, self.consumer_config, "consumer")
            consumer = self._lag_consumer
            try:
                meta = consumer.list_topics(self.topic, timeout=self.timeout)
                topic = meta.topics.get(self.topic)
                if topic is None or topic.error is not None:
                    return 0
                parts = [TopicPartition(self.topic, p) for p in topic.partitions]
                total = 0
                for tp in consumer.committed(parts, timeout=self.timeout):
                    low, high = consumer.get_watermark_offsets(tp, timeout=self.timeout)
                    total += lag(tp.offset, low, high)
                return total
            except KafkaException as exc:
                raise kafka_error(exc, f"reading the lag of {self.topic}") from None

    def close(self) -> None:
        with self._lock:
            self._producer.flush(self.timeout)
            if self._lag_consumer is not None:
                self._lag_consumer.close()
                self._lag_consumer = None


def _make(kind: Any, config: Mapping[str, Any], what: str) -> Any:
    try:
        return kind(dict(config))
    except KafkaException as exc:
        raise ConfigError(f"invalid Kafka {what} configuration: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid Kafka {what} configuration: {exc}") from None
