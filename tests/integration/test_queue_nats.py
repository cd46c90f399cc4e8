"""Queue ingest through the real NATS JetStream server into the real PostgreSQL.

Each test uses its own stream, subject and consumer (deleted afterwards), and
its own PostgreSQL schema in a database made for this run.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server_harness import free_port, make_record

import provmark
from provmark.queue import QueueError, open_queue, wait_drained
from provmark.queue.jetstream import NatsQueue
from provmark.queue.worker import WorkerStats, run_worker
from provmark.record import new_record_id, now_utc
from provmark.verification.audit import audit

psycopg = pytest.importorskip("psycopg")
nats = pytest.importorskip("nats")

pytestmark = [pytest.mark.nats, pytest.mark.postgres]

NATS_URL = "nats://127.0.0.1:4222"


@pytest.fixture()
def db_url(pg_database: str) -> str:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return f"{pg_database}?options=-csearch_path%3D{schema}"


async def _delete_streams(names: list[str]) -> None:
    nc = await nats.connect(NATS_URL)
    js = nc.jetstream()
    for name in names:
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_stream(name)
    await nc.close()


@pytest.fixture()
def names() -> Iterator[dict[str, Any]]:
    tag = uuid.uuid4().hex[:10]
    opts = {"stream": f"T{tag.upper()}", "subject": f"test.{tag}", "durable": f"w{tag}"}
    yield opts
    asyncio.run(_delete_streams([opts["stream"], opts["stream"] + "_DEAD"]))


@pytest.fixture()
def queue(names: dict[str, Any]) -> Iterator[NatsQueue]:
    try:
        q = NatsQueue(NATS_URL, ack_wait=3.0, **names)
    except QueueError as exc:
        pytest.skip(f"NATS JetStream not reachable: {exc}")
    yield q
    q.close()


def records(n: int, prefix: str = "q") -> list[dict[str, Any]]:
    return [
        {
            "record_id": new_record_id(),
            "generated_at": now_utc(),
            "model": {"name": "acme/sum"},
            "output": {"sha256": hashlib.sha256(f"{prefix}-{i}".encode()).hexdigest()},
        }
        for i in range(n)
    ]


class Worker:
    """run_worker in a thread of this process."""

    def __init__(self, queue: NatsQueue, pm: provmark.Provmark) -> None:
        self.stop = threading.Event()
        self.stats = WorkerStats()
        self.thread = threading.Thread(
            target=run_worker, args=(queue, pm), kwargs={"stop": self.stop, "stats": self.stats}
        )
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)


def test_publish_worker_stores_each_record_once(
    queue: NatsQueue, db_url: str, tmp_path: Path
) -> None:
    batch = records(3000)
    queue.publish(batch[:1000])
    queue.publish(batch[:1000])  # a retried publish (deduplicated by JetStream)
    queue.publish(batch[500:3000])  # overlapping batch: delivered twice, stored once
    assert queue.pending() >= 2
    with provmark.open(db_url, home=tmp_path) as pm:
        worker = Worker(queue, pm)
        try:
            drain = wait_drained(queue, 60)
        finally:
            worker.close()
        assert pm.store.count() == 3000
        assert pm.store.has([r["record_id"] for r in batch]) == {r["record_id"] for r in batch}
        assert audit(pm).ok
    assert worker.stats.records == 3500 and worker.stats.rejected == 0
    assert drain < 60 and queue.pending() == 0


def test_lag_is_measurable(queue: NatsQueue) -> None:
    assert queue.pending() == 0
    for _ in range(5):
        queue.publish(records(10))
    assert queue.pending() == 5


def test_big_batch_is_split_under_the_message_limit(
    queue: NatsQueue, db_url: str, tmp_path: Path
) -> None:
    batch = records(4000)
    for r in batch:
        r["extra"] = {"note": "x" * 400}
    queue.publish(batch)  # ~2 MB: more than one message
    assert queue.pending() >= 2
    with provmark.open(db_url, home=tmp_path) as pm:
        worker = Worker(queue, pm)
        try:
            wait_drained(queue, 60)
        finally:
            worker.close()
        assert pm.store.count() == 4000


def test_invalid_records_are_dead_lettered_not_retried(
    queue: NatsQueue, db_url: str, tmp_path: Path
) -> None:
    good = records(20)
    bad = {"record_id": "not-a-uuid", "generated_at": now_utc(), "model": {"name": "m"}}
    queue.publish([*good[:10], bad, *good[10:]])

    async def raw() -> None:  # a message that is not a JSON array at all
        nc = await nats.connect(NATS_URL)
        await nc.jetstream().publish(queue.subject, b"{not json")
        await nc.close()

    asyncio.run(raw())
    with provmark.open(db_url, home=tmp_path) as pm:
        worker = Worker(queue, pm)
        try:
            wait_drained(queue, 30)
        finally:
            worker.close()
        assert pm.store.count() == 20
    assert worker.stats.rejected == 1
    assert queue.dead_letters() == 2


def dead_stream(queue: NatsQueue) -> list[dict[str, Any]]:
    """Every dead letter in the queue's dead-letter stream."""

    async def read() -> list[dict[str, Any]]:
        nc = await nats.connect(NATS_URL)
        js = nc.jetstream()
        info = await js.stream_info(queue.stream + "_DEAD")
        out: list[dict[str, Any]] = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(queue.stream + "_DEAD", seq)
            with contextlib.suppress(ValueError):
                value = json.loads(msg.data or b"")
                out.extend(value if isinstance(value, list) else [value])
        await nc.close()
        return out

    return asyncio.run(read())


def test_a_valid_record_right_after_a_nul_record_is_stored_within_a_second(
    queue: NatsQueue, db_url: str, tmp_path: Path
) -> None:
    """A NUL record published straight to the queue (an older server, another publisher):
    the worker's door refuses it to the dead-letter stream, and the next record goes on."""
    with provmark.open(db_url, home=tmp_path, flush_interval=0.01) as pm:
        worker = Worker(queue, pm)
        try:
            warm = records(1, prefix="warm")
            queue.publish(warm)
            deadline = time.monotonic() + 30
            while not pm.store.has([warm[0]["record_id"]]) and time.monotonic() < deadline:
                time.sleep(0.01)
            nul, good = records(2, prefix="nul")
            nul["model"]["name"] = "acme\x00sum"
            queue.publish([nul])
            queue.publish([good])
            started = time.monotonic()
            while not pm.store.has([good["record_id"]]) and time.monotonic() < started + 30:
                time.sleep(0.01)
            elapsed = time.monotonic() - started
            wait_drained(queue, 30)
        finally:
            worker.close()
        assert pm.store.has([good["record_id"]]) and elapsed < 1.0, elapsed
        assert not pm.store.has([nul["record_id"]])
    (dead,) = dead_stream(queue)
    assert dead["record"]["record_id"] == nul["record_id"]
    assert dead["reason"].startswith("[0].model.name") and "NUL" in dead["reason"]


def test_queue_mode_server_refuses_at_the_door_and_the_next_record_is_stored_within_a_second(
    queue: NatsQueue, db_url: str, tmp_path: Path
) -> None:
    """The server's 202 path validates exactly like the worker: a NUL record, Infinity or
    2**70 is a 422 and never queued; a valid record posted right after is stored (by a
    worker, on PostgreSQL) within a second."""
    import httpx
    import uvicorn

    from provmark.server import Settings, create_app
    from provmark.server.auth import TokenStore
    from provmark.server.state import StateDB

    with provmark.open(db_url, home=tmp_path / "home", flush_interval=0.01) as pm:
        state = str(tmp_path / "state.db")
        app = create_app(pm, settings=Settings(state=state, queue=queue))
        port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        worker = Worker(queue, pm)
        db = StateDB(state)
        token = TokenStore(db).create("ingest", "queue test")[0]
        db.close()
        try:
            while not server.started:
                time.sleep(0.02)
            with httpx.Client(
                base_url=f"http://127.0.0.1:{port}", headers={"authorization": f"Bearer {token}"}
            ) as c:
                nul = make_record("queued nul", actor={"user_id": "a\x00b"})
                r = c.post("/v1/records", json=[nul])
                assert r.status_code == 422 and r.json()["field"] == "[0].actor.user_id"
                for literal in ("Infinity", "1180591620717411303424"):
                    text = json.dumps([make_record("q", usage={"latency_ms": 7.5})])
                    r = c.post(
                        "/v1/records",
                        content=text.replace("7.5", literal),
                        headers={"content-type": "application/json"},
                    )
                    assert r.status_code == 422 and r.json()["field"] == "[0].usage.latency_ms"
                good = make_record("queued after nul")
                started = time.monotonic()
                assert c.post("/v1/records", json=[good]).status_code == 202
                while not pm.store.has([good["record_id"]]) and time.monotonic() < started + 30:
                    time.sleep(0.01)
                elapsed = time.monotonic() - started
            assert pm.store.has([good["record_id"]]) and elapsed < 1.0, elapsed
            assert not pm.store.has([nul["record_id"]]) and queue.dead_letters() == 0
        finally:
            worker.close()
            server.should_exit = True
            thread.join(15)


def test_a_record_the_store_refuses_is_dead_lettered_by_the_worker(
    queue: NatsQueue, db_url: str, tmp_path: Path
) -> None:
    import random

    rnd = random.Random(18)
    a, poison, c = records(3, prefix="refused")
    poison["actor"] = {"user_id": "".join(chr(rnd.randint(0x4E00, 0x9FFF)) for _ in range(3000))}
    queue.publish([a, poison, c])
    with provmark.open(db_url, home=tmp_path, flush_interval=0.01) as pm:
        worker = Worker(queue, pm)
        try:
            wait_drained(queue, 30)
        finally:
            worker.close()
        ids = [a["record_id"], poison["record_id"], c["record_id"]]
        assert pm.store.has(ids) == {a["record_id"], c["record_id"]}
        (letter,) = pm.dead_letters()
        assert letter.record_id == poison["record_id"] and "54000" in letter.reason
        assert audit(pm).ok
    assert worker.stats.rejected == 1
    (dead,) = dead_stream(queue)
    assert dead["record"]["record_id"] == poison["record_id"] and "54000" in dead["reason"]


def test_failed_handler_is_redelivered(queue: NatsQueue, db_url: str, tmp_path: Path) -> None:
    batch = records(50)
    queue.publish(batch)
    calls: list[int] = []
    stop = threading.Event()
    with provmark.open(db_url, home=tmp_path) as pm:

        def handler(recs: list[dict[str, Any]]) -> None:
            calls.append(len(recs))
            if len(calls) == 1:
                pm.ingest(recs[:10])  # stored part of it, then failed before the ack
                raise RuntimeError("database went away")
            pm.ingest(recs)
            stop.set()

        thread = threading.Thread(target=queue.consume, args=(handler,), kwargs={"stop": stop})
        thread.start()
        thread.join(30)
        assert not thread.is_alive()
        assert calls == [50, 50]
        assert pm.store.count() == 50 and audit(pm).ok
    assert queue.pending() == 0


def test_apublish_from_asyncio(queue: NatsQueue) -> None:
    async def main() -> None:
        await asyncio.gather(*(queue.apublish(records(10, prefix=str(i))) for i in range(4)))

    asyncio.run(main())
    assert queue.pending() == 4


def test_open_queue_and_bad_url() -> None:
    with pytest.raises(QueueError, match="cannot connect"):
        NatsQueue("nats://127.0.0.1:1", timeout=1)
    with pytest.raises(provmark.ConfigError):
        open_queue("amqp://127.0.0.1")


# ------------------------------------------------------------------ kill -9
def _worker(names: dict[str, Any], db_url: str, home: Path) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable, "-c", "from provmark.cli import run; run()", "worker",
        "--queue", NATS_URL, "--db", db_url, "--home", str(home), "--ack-wait", "2",
        "--stream", names["stream"], "--subject", names["subject"], "--durable", names["durable"],
        "--batch-size", "1000", "--log-level", "WARNING",
    ]  # fmt: skip
    return subprocess.Popen(cmd, stderr=subprocess.PIPE)


def test_kill_9_worker_mid_load(
    queue: NatsQueue, names: dict[str, Any], db_url: str, tmp_path: Path
) -> None:
    """0 acknowledged records lost, 0 duplicated; the lag drains."""
    total = 30_000
    published = records(total)
    for start in range(0, total, 500):
        queue.publish(published[start : start + 500])  # acknowledged by JetStream
    with provmark.open(db_url, home=tmp_path) as pm:  # schema + keys before the workers
        first = _worker(names, db_url, tmp_path)
        try:
            deadline = time.monotonic() + 60
            while pm.store.count() < 3000 and time.monotonic() < deadline:
                time.sleep(0.02)
            stored_at_kill = pm.store.count()
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        finally:
            if first.poll() is None:
                first.kill()
        assert 0 < stored_at_kill < total, "the kill did not land mid-load"
        second = _worker(names, db_url, tmp_path)
        try:
            drain = wait_drained(queue, 120)
        finally:
            second.send_signal(signal.SIGTERM)
            _, err = second.communicate(timeout=30)
        assert second.returncode == 0, err.decode()
        assert b"worker stopped" in err
        ids = [r["record_id"] for r in published]
        assert pm.store.count() == total  # no duplicates (records.record_id is also unique)
        assert pm.store.has(ids) == set(ids)  # nothing acknowledged was lost
        report = audit(pm)
        assert report.ok and report.tree_size == total, report.findings
    assert drain < 120
