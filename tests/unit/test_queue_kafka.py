"""KafkaQueue without a broker: config, serialisation, offsets, lag and error mapping.

No Kafka broker can run on this machine, so delivery itself is not tested here;
these tests use the real confluent-kafka client against a closed port.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from provmark.errors import ConfigError
from provmark.queue import QueueError, decode_batch, encode_batch, open_queue

ck = pytest.importorskip("confluent_kafka")

from provmark.queue.kafka import (  # noqa: E402
    KafkaQueue,
    first_offsets,
    kafka_error,
    lag,
    next_offsets,
)

NO_BROKER = "127.0.0.1:1"  # nothing listens there: every request fails fast
QUIET = {"log_level": 0}


def make(**kw: object) -> KafkaQueue:
    return KafkaQueue(NO_BROKER, config=QUIET, **kw)  # type: ignore[arg-type]


def test_config_is_safe_by_default() -> None:
    q = make(topic="t", group="g", timeout=3)
    assert q.url == f"kafka://{NO_BROKER}" and q.dead_topic == "t.dead"
    assert q.producer_config["acks"] == "all"
    assert q.producer_config["enable.idempotence"] is True
    assert q.producer_config["message.timeout.ms"] == 3000
    assert q.consumer_config["enable.auto.commit"] is False
    assert q.consumer_config["group.id"] == "g"
    assert q.consumer_config["auto.offset.reset"] == "earliest"
    q.close()


def test_user_config_cannot_weaken_durability() -> None:
    q = KafkaQueue(NO_BROKER, config={**QUIET, "acks": "0", "enable.auto.commit": True})
    assert q.producer_config["acks"] == "all"
    assert q.consumer_config["enable.auto.commit"] is False
    q.close()


def test_invalid_config_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="invalid Kafka producer configuration"):
        KafkaQueue(NO_BROKER, config={"no.such.setting": "1"})
    with pytest.raises(ConfigError):
        KafkaQueue(NO_BROKER, timeout=0)


def test_open_queue_kafka_url() -> None:
    q = open_queue(f"kafka://{NO_BROKER}", topic="x", config=QUIET)
    assert isinstance(q, KafkaQueue) and q.topic == "x"
    q.close()


def test_publish_without_broker_raises_not_persisted() -> None:
    q = make(timeout=0.5)
    start = time.monotonic()
    with pytest.raises(QueueError, match="kafka: publishing") as err:
        q.publish([{"record_id": "a"}])
    assert time.monotonic() - start < 5
    assert "_MSG_TIMED_OUT" in str(err.value) or "_TRANSPORT" in str(err.value)


def test_pending_without_broker_raises() -> None:
    q = make(timeout=0.5)
    with pytest.raises(QueueError, match="reading the lag"):
        q.pending()
    q.close()


def test_consume_without_broker_stops_when_asked() -> None:
    q = make(timeout=0.5)
    stop = threading.Event()
    calls: list[int] = []
    timer = threading.Timer(1.5, stop.set)
    timer.start()
    q.consume(lambda batch: calls.append(len(batch)), stop=stop)
    timer.join()
    assert calls == []
    q.close()


# ------------------------------------------------------------------ pure parts
def test_error_mapping() -> None:
    err = ck.KafkaError(ck.KafkaError._ALL_BROKERS_DOWN, "3/3 brokers are down")
    mapped = kafka_error(err, "publishing to t")
    assert isinstance(mapped, QueueError)
    assert str(mapped) == (
        "kafka: publishing to t failed: _ALL_BROKERS_DOWN: 3/3 brokers are down "
        "(no broker reachable)"
    )
    wrapped = kafka_error(ck.KafkaException(ck.KafkaError(ck.KafkaError._MSG_TIMED_OUT)), "x")
    assert "_MSG_TIMED_OUT" in str(wrapped) and "in time" in str(wrapped)
    retriable = ck.KafkaError(ck.KafkaError.NOT_ENOUGH_REPLICAS, "isr", retriable=True)
    assert str(kafka_error(retriable, "y")).endswith("; retriable")
    assert "boom" in str(kafka_error(ck.KafkaException("boom"), "z"))


def test_offsets_to_commit_and_to_rewind() -> None:
    msgs = [
        ck.Message(topic="t", partition=0, offset=7, value=b"[]"),
        ck.Message(topic="t", partition=1, offset=3, value=b"[]"),
        ck.Message(topic="t", partition=0, offset=5, value=b"[]"),
        ck.Message(topic="t", partition=1, offset=4, value=b"[]"),
    ]
    assert [(tp.partition, tp.offset) for tp in next_offsets(msgs)] == [(0, 8), (1, 5)]
    assert [(tp.partition, tp.offset) for tp in first_offsets(msgs)] == [(0, 5), (1, 3)]


def test_lag() -> None:
    assert lag(committed=10, low=0, high=25) == 15
    assert lag(committed=-1001, low=4, high=25) == 21  # group never committed
    assert lag(committed=2, low=10, high=25) == 15  # old messages expired
    assert lag(committed=25, low=0, high=25) == 0


def test_encode_decode_round_trip_and_split() -> None:
    batch = [{"record_id": str(i), "text": "é" * 50} for i in range(100)]
    chunks = encode_batch(batch, max_bytes=1000)
    assert len(chunks) > 1 and all(len(c) <= 1000 for c in chunks)
    assert [r for c in chunks for r in decode_batch(c)] == batch
    assert json.loads(encode_batch(batch)[0]) == batch
    assert encode_batch([]) == []


def test_encode_and_decode_errors() -> None:
    with pytest.raises(QueueError, match="over the message limit"):
        encode_batch([{"x": "y" * 2000}], max_bytes=1000)
    with pytest.raises(QueueError, match=r"\[1\]: each record must be a JSON object"):
        encode_batch([{}, ["not", "a", "record"]])  # type: ignore[list-item]
    with pytest.raises(QueueError, match="not JSON-serialisable"):
        encode_batch([{"when": object()}])
    with pytest.raises(QueueError, match="not JSON"):
        decode_batch(b"{oops")
    with pytest.raises(QueueError, match="array of record objects"):
        decode_batch(b'{"record_id": "a"}')
