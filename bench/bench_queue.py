"""Records/s through NATS JetStream: publish (acknowledged = persisted), worker, lag drain.

1. publish: ``--records`` records in batches of ``--batch`` with ``NatsQueue.publish``
   (one thread, then ``--clients`` concurrent asyncio publishers); p50/p99 per batch.
2. drain: a ``provmark worker`` process stores the backlog into PostgreSQL; time until
   the lag (``pending()``) is 0, and records/s stored.
3. live: publisher and worker at once; time until every record is stored.

Uses a throwaway stream and database on 127.0.0.1, deleted at the end.

    python bench/bench_queue.py [--records 50000] [--batch 500]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import nats
import psycopg

import provmark
from provmark.queue import wait_drained
from provmark.queue.jetstream import NatsQueue
from provmark.record import new_record_id, now_utc
from provmark.verification.audit import audit

sys.path.insert(0, str(Path(__file__).parent))
from common import save, table

ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
NATS = "nats://127.0.0.1:4222"


def records(n: int, seed: str) -> list[dict[str, Any]]:
    return [
        {
            "record_id": new_record_id(),
            "generated_at": now_utc(),
            "operation": "chat",
            "model": {"name": "acme/summarizer", "version": "3.2"},
            "output": {"sha256": hashlib.sha256(f"{seed}-{i}".encode()).hexdigest(), "size": 512},
            "actor": {"user_id": f"user-{i % 50}", "service": "bench"},
            "usage": {"input_tokens": 812, "output_tokens": 240, "latency_ms": 912.5},
            "tags": {"app": "bench"},
        }
        for i in range(n)
    ]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def publish_sync(q: NatsQueue, batches: list[list[dict[str, Any]]]) -> tuple[float, list[float]]:
    lat = []
    start = time.perf_counter()
    for b in batches:
        t = time.perf_counter()
        q.publish(b)
        lat.append(time.perf_counter() - t)
    return time.perf_counter() - start, lat


def publish_async(
    q: NatsQueue, batches: list[list[dict[str, Any]]], clients: int
) -> tuple[float, list[float]]:
    lat: list[float] = []

    async def client(mine: list[list[dict[str, Any]]]) -> None:
        for b in mine:
            t = time.perf_counter()
            await q.apublish(b)
            lat.append(time.perf_counter() - t)

    async def run() -> None:
        await asyncio.gather(*(client(batches[c::clients]) for c in range(clients)))

    start = time.perf_counter()
    asyncio.run(run())
    return time.perf_counter() - start, lat


def worker(q: NatsQueue, db: str, home: str, batch: int) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable, "-c", "from provmark.cli import run; run()", "worker",
        "--queue", NATS, "--db", db, "--home", home, "--stream", q.stream,
        "--subject", q.subject, "--durable", q.durable, "--batch-size", str(batch),
        "--log-level", "WARNING",
    ]  # fmt: skip
    return subprocess.Popen(cmd, stderr=subprocess.DEVNULL)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def count(db: str) -> int:
    with psycopg.connect(db) as conn:
        row = conn.execute("SELECT count(*) FROM records").fetchone()
        return int(row[0]) if row else 0


async def delete_streams(names: list[str]) -> None:
    nc = await nats.connect(NATS)
    js = nc.jetstream()
    for name in names:
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_stream(name)
    await nc.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=50_000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--workers", type=int, default=1, help="worker processes draining")
    ap.add_argument("--timeout", type=float, default=120.0, help="bound on each drain")
    args = ap.parse_args(argv)
    tag = uuid.uuid4().hex[:8]
    stream = f"BENCH{tag.upper()}"
    q = NatsQueue(NATS, stream=stream, subject=f"bench.{tag}", durable=f"w{tag}")
    dbname = f"provmark_bench_{tag}"
    admin = psycopg.connect(ADMIN, autocommit=True)
    admin.execute(f"CREATE DATABASE {dbname}")
    db = ADMIN.rsplit("/", 1)[0] + "/" + dbname
    home = tempfile.mkdtemp(prefix="provmark-bench-")
    provmark.open(db, home=home).close()  # schema and keys before the workers start
    n, b = args.records, args.batch
    rows: list[dict[str, Any]] = []

    def row(phase: str, recs: int, secs: float, note: str) -> None:
        rows.append({"phase": phase, "records": recs, "seconds": secs,
                     "records_per_s": recs / secs, "notes": note})  # fmt: skip

    def lat_note(lat: list[float]) -> str:
        return f"per batch p50 {pct(lat, 0.5) * 1e3:.1f} ms, p99 {pct(lat, 0.99) * 1e3:.1f} ms"

    try:
        secs, lat = publish_sync(q, [records(b, f"s{k}") for k in range(n // b)])
        row(f"publish {b}/batch, 1 thread", n, secs, lat_note(lat))
        batches = [records(b, f"a{k}") for k in range(n // b)]
        secs, lat = publish_async(q, batches, args.clients)
        row(f"publish {b}/batch, {args.clients} asyncio", n, secs, lat_note(lat))
        backlog = q.pending()
        procs = [worker(q, db, home, 2000) for _ in range(args.workers)]
        try:
            spawned = time.perf_counter()
            while count(db) == 0 and time.perf_counter() - spawned < args.timeout:
                time.sleep(0.01)
            first = time.perf_counter()
            wait_drained(q, args.timeout)
            done = time.perf_counter()
        finally:
            for proc in procs:
                stop(proc)
        stored = count(db)
        row(f"{args.workers} worker(s) drain backlog", stored, done - first,
            f"lag {backlog} msgs -> 0 in {done - spawned:.1f} s incl. worker start")  # fmt: skip
        proc = worker(q, db, home, 2000)
        try:
            time.sleep(2.0)  # let the worker start: measure the pipeline, not the import
            start = time.perf_counter()
            publish_sync(q, [records(b, f"l{k}") for k in range(n // b)])
            wait_drained(q, args.timeout)
            secs = time.perf_counter() - start
        finally:
            stop(proc)
        row("live: publish + worker", count(db) - stored, secs, "first publish -> lag 0")
        with provmark.open(db, home=home) as pm:
            report = audit(pm)
        print(f"audit: ok={report.ok}, records={report.records}, tree={report.tree_size}")
    finally:
        q.close()
        asyncio.run(delete_streams([stream, stream + "_DEAD"]))
        admin.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
        admin.close()
    print(table("NATS JetStream queue -> provmark worker -> PostgreSQL, 127.0.0.1", rows))
    print(f"\nresults: {save('queue', {'rows': rows})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
