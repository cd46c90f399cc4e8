"""Side by side: the same provenance records through MLflow, a naive baseline and provmark
(embedded, ``provmark serve`` on PostgreSQL, and NATS JetStream -> worker -> PostgreSQL).

    python bench/compare.py [--n 20000] [--mlflow-n 300] [--burst 100000] [--quick]

Every system writes the same fields per generation: model id + weights hash, input
hash, params, execution context, output hash, user and time. Prints records/s,
p50/p99 latency on the caller's thread (per record; for the server and the queue the
latency of one batch request / publish instead, in ``batch_p50_ms``/``batch_p99_ms``),
records lost and duplicated in a burst, and the ratio to MLflow; writes
bench/results/compare.json and bench/results/compare.png (throughput vs batch size,
latency percentiles). The server and the queue need PostgreSQL at 127.0.0.1:5432 and
NATS JetStream at 127.0.0.1:4222 (throwaway database and stream, removed at the end);
a row whose service is not there says ``skipped: <reason>``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import os
import socket
import sqlite3
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import provmark
from common import RESULTS, Unavailable, machine, percentiles, save, table
from provmark.record import format_time, new_record_id

SWEEP = (16, 64, 256, 1024, 4096)  # batch sizes of the throughput-vs-batch-size curves
HTTP_BATCH = 1024  # records per POST /v1/records and per NATS publish in the main rows
CLIENTS = 4  # concurrent HTTP clients in the main rows and the sweep
SERVER_WORKERS = 2  # `provmark serve --workers 2`: one process per core of the bench machine
BURST_CLIENTS = 16  # concurrent HTTP clients / asyncio publishers in the bursts
WAIT = 600.0  # bound (s) on any one phase of the server and queue runs

CONTEXT = {"python": "3.11", "platform": "linux-x86_64", "packages": {"torch": "2.13.0"}}
WEIGHTS = hashlib.sha256(b"weights").hexdigest()


def fields(i: int) -> dict[str, Any]:
    prompt = f"summarise report {i}"
    output = f"summary {i}"
    return {
        "model": "acme/summarizer",
        "model_version": "3.2",
        "weights_sha256": WEIGHTS,
        "input_sha256": hashlib.sha256(prompt.encode()).hexdigest(),
        "params": {"temperature": 0.2, "top_p": 0.9, "max_tokens": 256, "seed": i},
        "context": CONTEXT,
        "output_sha256": hashlib.sha256(output.encode()).hexdigest(),
        "user": f"user-{i % 50}",
        "time": time.time(),
        "_prompt": prompt,
        "_output": output,
    }


def timed(n: int, write: Callable[[int], None], finish: Callable[[], None]) -> dict[str, Any]:
    lat = []
    t0 = time.perf_counter()
    for i in range(n):
        s = time.perf_counter_ns()
        write(i)
        lat.append(time.perf_counter_ns() - s)
    finish()
    elapsed = time.perf_counter() - t0
    return {"n": n, "records_per_s": n / elapsed, **percentiles(lat)}


# ---------------------------------------------------------------- MLflow


def mlflow_tracking(n: int, folder: Path) -> dict[str, Any]:
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{folder}/mlflow.db")
    _experiment(mlflow, "provenance", folder)

    def write(i: int) -> None:
        f = fields(i)
        with mlflow.start_run():
            mlflow.log_params({k: v for k, v in f["params"].items()} | {"model": f["model"]})
            mlflow.set_tags(
                {
                    "model_version": f["model_version"],
                    "weights_sha256": f["weights_sha256"],
                    "input_sha256": f["input_sha256"],
                    "output_sha256": f["output_sha256"],
                    "user": f["user"],
                }
            )
            mlflow.log_dict(f["context"], "context.json")

    return timed(n, write, lambda: None)


def mlflow_tracing(n: int, folder: Path, burst: int) -> dict[str, Any]:
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{folder}/traces.db")
    _experiment(mlflow, "provenance-traces", folder)

    def write(i: int) -> None:
        f = fields(i)
        with mlflow.start_span(name="generate") as span:
            span.set_inputs({"prompt_sha256": f["input_sha256"], **f["params"]})
            span.set_attributes({"model": f["model"], "user": f["user"], "weights": WEIGHTS})
            span.set_outputs({"output_sha256": f["output_sha256"]})

    result = timed(n, write, lambda: _drain_mlflow(mlflow))
    if burst:
        before = len(mlflow.search_traces(max_results=100_000))
        for i in range(burst):
            write(n + i)
        _drain_mlflow(mlflow)
        after = len(mlflow.search_traces(max_results=100_000))
        result["burst"] = burst
        result["lost_in_burst"] = burst - (after - before)
    return result


def _experiment(mlflow: Any, name: str, folder: Path) -> None:
    """A new experiment whose artifacts stay in ``folder`` (not ./mlruns of the caller)."""
    where = (folder / f"{name}-artifacts").as_uri()
    mlflow.set_experiment(experiment_id=mlflow.create_experiment(name, artifact_location=where))


def _drain_mlflow(mlflow: Any) -> None:
    """Wait for MLflow's asynchronous trace export to finish (what it still holds is lost)."""
    flush = getattr(mlflow, "flush_trace_async_logging", None)
    if flush is not None:
        try:
            flush(terminate=False)
        except Exception as exc:  # the exporter reports its own drops
            print(f"(mlflow flush: {exc})")
    time.sleep(1)


# ---------------------------------------------------------------- naive baseline


def naive(n: int, folder: Path, batched: bool) -> dict[str, Any]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    db = sqlite3.connect(folder / f"naive-{batched}.db")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE r (id INTEGER PRIMARY KEY, body BLOB, sig BLOB, out TEXT)")
    pending: list[tuple[bytes, bytes, str]] = []

    def write(i: int) -> None:
        f = fields(i)
        body = json.dumps(
            {k: v for k, v in f.items() if not k.startswith("_")}, sort_keys=True
        ).encode()
        sig = key.sign(body)
        if batched:
            pending.append((body, sig, f["output_sha256"]))
            if len(pending) >= 500:
                finish()
        else:
            db.execute(
                "INSERT INTO r (body, sig, out) VALUES (?,?,?)", (body, sig, f["output_sha256"])
            )
            db.commit()

    def finish() -> None:
        if pending:
            db.executemany("INSERT INTO r (body, sig, out) VALUES (?,?,?)", pending)
            db.commit()
            pending.clear()

    result = timed(n, write, finish)
    db.close()
    return result


# ---------------------------------------------------------------- provmark


def provmark_embedded(n: int, folder: Path, burst: int) -> dict[str, Any]:
    weights = folder / "model.safetensors"
    weights.write_bytes(b"weights")
    with provmark.open(folder / "provmark.db", home=folder / "home", max_queue=5000) as pm:
        model = provmark.Model("acme/summarizer", version="3.2", weights=weights)

        @pm.capture(model=model)
        def generate(
            prompt: str, *, temperature: float = 0.2, top_p: float = 0.9, seed: int = 0
        ) -> str:
            return prompt.replace("summarise report", "summary")

        def write(i: int) -> None:
            with pm.acting_for(f"user-{i % 50}"):
                generate(f"summarise report {i}", seed=i)

        result = timed(n, write, pm.flush)
        if burst:
            # a burst far larger than the queue (5,000): back-pressure blocks, nothing drops
            before = pm.store.count()
            t0 = time.perf_counter()
            for i in range(burst):
                write(n + i)
            pm.flush()
            result["burst"] = burst
            result["burst_records_per_s"] = burst / (time.perf_counter() - t0)
            stored = pm.store.count() - before
            result["lost_in_burst"] = burst - stored
            ids = pm.store._query("SELECT COUNT(DISTINCT record_id), COUNT(*) FROM records")[0]
            result["duplicated"] = ids[1] - ids[0]
    return result


def provmark_batch_sizes(n: int, folder: Path) -> list[dict[str, Any]]:
    rows = []
    for batch in (16, 64, 256, 1024, 4096):
        d = folder / f"batch-{batch}"
        d.mkdir()
        with provmark.open(d / "p.db", home=d, batch_size=batch, max_queue=20_000) as pm:
            gen = pm.capture(model=provmark.Model("acme/summarizer"))(
                lambda p, *, seed=0: "out " + p
            )
            r = timed(n, lambda i, gen=gen: gen(f"prompt {i}", seed=i), pm.flush)
        rows.append({"batch_size": batch, "records_per_s": r["records_per_s"]})
    return rows


# ---------------------------------------------------------------- provmark server, NATS


def as_record(i: int) -> dict[str, Any]:
    """``fields(i)`` as an unsigned provmark record (what the server and the worker store)."""
    f = fields(i)
    return {
        "record_id": new_record_id(),
        "generated_at": format_time(datetime.fromtimestamp(f["time"], UTC)),
        "model": {
            "name": f["model"],
            "version": f["model_version"],
            "files": [{"path": "model.safetensors", "sha256": f["weights_sha256"], "size": 7}],
        },
        "input": {"sha256": f["input_sha256"], "media_type": "text/plain; charset=utf-8"},
        "params": f["params"],
        "context": f["context"],
        "output": {
            "sha256": f["output_sha256"],
            "size": len(f["_output"]),
            "media_type": "text/plain; charset=utf-8",
        },
        "actor": {"user_id": f["user"]},
    }


def batched(records: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [records[k : k + size] for k in range(0, len(records), size)]


def ms(seconds: list[float], q: float) -> float:
    s = sorted(seconds)
    return s[min(len(s) - 1, int(q * len(s)))] * 1000 if s else 0.0


class Stored:
    """Counts in the ``records`` table of a provmark store (SQLite path or PostgreSQL URL)."""

    def __init__(self, db: str) -> None:
        self.pg = db.startswith("postgresql://")
        if self.pg:
            import psycopg

            self.conn: Any = psycopg.connect(db, autocommit=True)
        else:
            self.conn = sqlite3.connect(db)

    def total(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM records").fetchone()[0])

    def ids(self, ids: list[str]) -> tuple[int, int]:
        """(rows, distinct record ids) among ``ids``: lost = len(ids) - distinct."""
        if self.pg:
            row = self.conn.execute(
                "SELECT count(*), count(DISTINCT record_id) FROM records "
                "WHERE record_id = ANY(%s::uuid[])",
                (ids,),
            ).fetchone()
            return int(row[0]), int(row[1])
        rows = distinct = 0
        for k in range(0, len(ids), 500):
            chunk = ids[k : k + 500]
            marks = ",".join("?" * len(chunk))
            r, d = self.conn.execute(
                f"SELECT count(*), count(DISTINCT record_id) FROM records "
                f"WHERE record_id IN ({marks})",
                chunk,
            ).fetchone()
            rows, distinct = rows + r, distinct + d
        return rows, distinct

    def duplicated(self) -> int:
        """Rows beyond one per record id, over the whole store."""
        row = self.conn.execute("SELECT count(*) - count(DISTINCT record_id) FROM records")
        return int(row.fetchone()[0])

    def close(self) -> None:
        self.conn.close()


def provmark_server(
    n: int, burst: int, sweep_n: int, folder: Path, workers: int = SERVER_WORKERS
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``provmark serve`` on a fresh PostgreSQL database, records through ``POST /v1/records``."""
    try:
        from bench_server import pg_database, post_batches, server
    except ImportError as exc:
        raise Unavailable(f"{exc.name} not installed (pip install -e '.[server]')") from None
    folder.mkdir()
    with pg_database() as db, server("compare", db, folder, workers=workers) as (url, token):
        count = Stored(db)

        def post(first: int, k: int, batch: int, clients: int) -> dict[str, Any]:
            recs = [as_record(i) for i in range(first, first + k)]
            bodies = [(json.dumps(b).encode(), len(b)) for b in batched(recs, batch)]
            r = post_batches(url, token, bodies, clients, WAIT)
            rows, distinct = count.ids([x["record_id"] for x in recs])
            return r | {"stored": distinct, "lost": k - distinct, "duplicated": rows - distinct}

        try:
            post(-16, 16, 16, 1)  # warm-up: connections, first transaction; not counted
            r = post(0, n, HTTP_BATCH, CLIENTS)
            result: dict[str, Any] = {
                "n": n,
                "records_per_s": r["stored"] / r["seconds"],
                "stored": r["stored"],
                "batch": HTTP_BATCH,
                "clients": CLIENTS,
                "batch_p50_ms": ms(r["latencies"], 0.50),
                "batch_p99_ms": ms(r["latencies"], 0.99),
                "retried": r["retried"],
                "errors": r["errors"][:3],
            }
            sweep = []
            first = n
            for batch in SWEEP:
                r = post(first, sweep_n, batch, CLIENTS)
                first += sweep_n
                sweep.append(
                    {
                        "batch_size": batch,
                        "records_per_s": r["stored"] / r["seconds"],
                        "batch_p50_ms": ms(r["latencies"], 0.50),
                        "batch_p99_ms": ms(r["latencies"], 0.99),
                    }
                )
            if burst:
                # BURST_CLIENTS requests of up to 4,096 records at once: more in flight than
                # the server's writer queue holds (50,000); back-pressure, not loss
                batch = max(16, min(4096, burst // BURST_CLIENTS))
                r = post(first, burst, batch, BURST_CLIENTS)
                result |= {
                    "burst": burst,
                    "burst_batch": batch,
                    "burst_clients": BURST_CLIENTS,
                    "burst_records_per_s": r["stored"] / r["seconds"],
                    "burst_retried": r["retried"],
                    "burst_errors": r["errors"][:3],
                    "lost_in_burst": r["lost"],
                    "duplicated": count.duplicated(),
                }
        finally:
            count.close()
    return result, sweep


def provmark_remote(n: int, folder: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One application process: ``@pm.capture`` through the remote client into the server."""
    try:
        from bench_remote import run
    except ImportError as exc:
        raise Unavailable(f"{exc.name} not installed (pip install -e '.[server]')") from None
    folder.mkdir()
    return run(n, SERVER_WORKERS, "postgres", folder, {}), []


def _reachable(host: str, port: int, what: str) -> None:
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as exc:
        raise Unavailable(f"{what} at {host}:{port}: {exc.strerror or exc}") from None


def provmark_nats(
    n: int, burst: int, sweep_n: int, folder: Path
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Records published to NATS JetStream, stored by a ``provmark worker`` process.

    The worker writes to a fresh PostgreSQL database (an SQLite file when PostgreSQL
    is not there). Records/s are end to end: first publish until the last is stored.
    """
    try:
        import bench_queue as bq
        from provmark.queue import QueueError
        from provmark.queue.jetstream import NatsQueue
    except ImportError as exc:
        raise Unavailable(f"{exc.name} not installed (pip install -e '.[server]')") from None
    _reachable("127.0.0.1", 4222, "NATS")
    tag = uuid.uuid4().hex[:8]
    try:
        q = NatsQueue(bq.NATS, stream=f"COMPARE{tag.upper()}", subject=f"compare.{tag}",
                      durable=f"w{tag}")  # fmt: skip
    except QueueError as exc:
        raise Unavailable(str(exc)) from None
    folder.mkdir()
    try:
        with _worker_store(folder) as (db, store):
            provmark.open(db, home=folder / "home").close()  # schema and keys first
            proc = bq.worker(q, db, str(folder / "home"), 2000)
            count = Stored(db)

            def run(first: int, k: int, batch: int, clients: int = 1) -> dict[str, Any]:
                recs = [as_record(i) for i in range(first, first + k)]
                start = time.perf_counter()
                if clients == 1:
                    _, lat = bq.publish_sync(q, batched(recs, batch))
                else:
                    _, lat = bq.publish_async(q, batched(recs, batch), clients)
                published = time.perf_counter()
                done = drained(q, WAIT, lambda: proc.poll() is None)
                rows, distinct = count.ids([x["record_id"] for x in recs])
                return {
                    "records_per_s": distinct / (done - start),
                    "publish_records_per_s": k / (published - start),
                    "batch_p50_ms": ms(lat, 0.50),
                    "batch_p99_ms": ms(lat, 0.99),
                    "lost": k - distinct,
                    "duplicated": rows - distinct,
                }

            try:
                run(-16, 16, 16)  # warm-up: the worker has started and stored; not counted
                r = run(0, n, HTTP_BATCH)
                result: dict[str, Any] = {"n": n, "store": store, "batch": HTTP_BATCH} | r
                sweep = []
                first = n
                for batch in SWEEP:
                    r = run(first, sweep_n, batch)
                    first += sweep_n
                    sweep.append(
                        {"batch_size": batch}
                        | {k: r[k] for k in ("records_per_s", "batch_p50_ms", "batch_p99_ms")}
                    )
                if burst:
                    # everything published at once by concurrent publishers while one
                    # worker drains: the backlog waits in JetStream (at-least-once)
                    batch = max(16, min(4096, burst // BURST_CLIENTS))
                    r = run(first, burst, batch, BURST_CLIENTS)
                    result |= {
                        "burst": burst,
                        "burst_batch": batch,
                        "burst_clients": BURST_CLIENTS,
                        "burst_records_per_s": r["records_per_s"],
                        "burst_publish_records_per_s": r["publish_records_per_s"],
                        "lost_in_burst": r["lost"],
                        "duplicated": count.duplicated(),
                        "dead_letters": q.dead_letters(),
                    }
            finally:
                bq.stop(proc)
                count.close()
    finally:
        q.close()
        asyncio.run(bq.delete_streams([q.stream, q.stream + "_DEAD"]))
    return result, sweep


def drained(q: Any, timeout: float, alive: Callable[[], bool]) -> float:
    """When the queue's lag (published, not yet acknowledged) got to 0, as perf_counter.

    The worker acknowledges a message only after its records are stored (and the store
    is counted after this anyway); polling the lag costs the store nothing.
    """
    deadline = time.perf_counter() + timeout
    while (now := time.perf_counter()) < deadline:
        if q.pending() == 0:
            return now
        if not alive():
            raise RuntimeError("the provmark worker process exited")
        time.sleep(0.01)
    return now


@contextmanager
def _worker_store(folder: Path) -> Iterator[tuple[str, str]]:
    """(db, store): a throwaway PostgreSQL database, else an SQLite file in ``folder``."""
    try:
        from bench_server import create_pg_database, drop_pg_database

        name, db = create_pg_database()
    except (ImportError, Unavailable) as exc:
        print(f"(provmark_nats: the worker stores into SQLite: {exc})", flush=True)
        yield str(folder / "worker.db"), "sqlite (no postgresql)"
        return
    try:
        yield db, "postgresql"
    finally:
        drop_pg_database(name)


# ---------------------------------------------------------------- report


NOTES = {
    "mlflow_tracking": "run per record",
    "mlflow_tracing": "trace per record, async",
    "naive_commit_each": "commit per record",
    "naive_batched": "500 per commit",
    "provmark_embedded": "capture, in process",
    "provmark_server_pg": f"{HTTP_BATCH:,}/POST x {CLIENTS} clients",
    "provmark_nats": f"{HTTP_BATCH:,}/publish, end to end",
    "provmark_remote": "one app process, remote client",
}
LEGEND = f"""\
records_per_s: stored (signed + logged for provmark); server: {CLIENTS} HTTP clients, counted
  in the store after; nats: first publish until the worker stored the last record.
p50_us/p99_us: per record on the caller's thread. batch_p50_ms/batch_p99_ms: one request of
  {HTTP_BATCH:,} records (server: POST /v1/records until stored; nats: publish until JetStream
  acknowledged it), not per record. burst: records sent at once (server: {BURST_CLIENTS} clients
  x up to 4,096 records per POST; nats: {BURST_CLIENTS} asyncio publishers); lost_in_burst: record
  ids sent but not in the store after; duplicated: rows beyond one per record id in the store.
remote: one application process capturing with provmark.open("http://...") into `provmark serve
  --workers {SERVER_WORKERS}` on PostgreSQL, captured until acknowledged (bench/bench_remote.py).
x_mlflow / x_naive: records/s over MLflow tracking's and over the naive batched loop's."""


def row(
    name: str, r: dict[str, Any], base: float | None, naive_base: float | None = None
) -> dict[str, Any]:
    """One line of the table; '-' where a column does not apply."""
    note = NOTES.get(name, "")
    if "skipped" in r or "failed" in r:
        note = f"skipped: {r['skipped']}" if "skipped" in r else f"failed: {r['failed']}"
        r = {}
    elif name == "provmark_nats":
        note += f", worker -> {r['store']}"
    elif name in ("provmark_server_pg", "provmark_remote"):
        note += f", {SERVER_WORKERS} server processes, postgresql"
    rate = r.get("records_per_s")
    naive_rate = naive_base or 0.0
    return {
        "system": name,
        "n": r.get("n", "-"),
        "records_per_s": rate if rate is not None else "-",
        "p50_us": r.get("p50_us", "-"),
        "p99_us": r.get("p99_us", "-"),
        "batch_p50_ms": r.get("batch_p50_ms", "-"),
        "batch_p99_ms": r.get("batch_p99_ms", "-"),
        "burst": r.get("burst", "-"),
        "lost_in_burst": r.get("lost_in_burst", "-"),
        "duplicated": r.get("duplicated", "-"),
        "x_mlflow": rate / base if rate is not None and base else "-",
        "x_naive": rate / naive_rate if rate is not None and naive_rate else "-",
        "note": note,
    }


def plot(results: dict[str, Any], sweeps: dict[str, list[dict[str, Any]]], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib not installed: no plot)")
        return
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(17, 4.8))
    labels = {
        "provmark_embedded": "embedded (writer batch)",
        "provmark_server_pg": f"server + PostgreSQL (records per POST, {CLIENTS} clients)",
        "provmark_nats": "NATS -> worker, end to end (records per publish)",
    }
    for name, sweep in sweeps.items():
        if sweep:
            xs = [r["batch_size"] for r in sweep]
            a.plot(xs, [r["records_per_s"] for r in sweep], marker="o", label=labels[name])
    a.set_xlabel("batch size (records)")
    a.set_ylabel("records/s (signed + logged, stored)")
    a.set_title("provmark throughput vs batch size")
    a.legend(fontsize=8)
    names = [k for k, r in results.items() if "p50_us" in r]
    for q, marker in (("p50_us", "o"), ("p99_us", "s")):
        b.scatter(names, [results[k][q] for k in names], marker=marker, label=q)
    b.set_yscale("log")
    b.set_ylabel("caller latency (us)")
    b.set_title("latency per record on the caller's thread")
    b.legend()
    b.tick_params(axis="x", rotation=30)
    for name, what, color in (
        ("provmark_server_pg", "server POST", "C1"),
        ("provmark_nats", "JetStream publish", "C2"),
    ):
        sweep = sweeps.get(name) or []
        xs = [r["batch_size"] for r in sweep]
        for q, style in (("batch_p50_ms", "o-"), ("batch_p99_ms", "s--")):
            if sweep:
                c.plot(xs, [r[q] for r in sweep], style, color=color, label=f"{what} {q[6:9]}")
    for axis in (a, c):
        axis.set_xscale("log", base=2)
        axis.set_xticks(list(SWEEP), [str(x) for x in SWEEP])
    c.set_yscale("log")
    c.set_xlabel("batch size (records)")
    c.set_ylabel("latency of one batch request (ms)")
    c.set_title("server POST /v1/records and JetStream publish latency")
    c.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def attempt(
    name: str, run: Callable[[], tuple[dict[str, Any], list[dict[str, Any]]]]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run one system; a missing service makes a skipped row, another error a failed one."""
    print(f"({name} ...)", flush=True)
    try:
        return run()
    except Unavailable as exc:
        print(f"({name} skipped: {exc})", flush=True)
        return {"skipped": str(exc)}, []
    except Exception as exc:
        traceback.print_exc()
        return {"failed": f"{type(exc).__name__}: {str(exc)[:200]}"}, []


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=20_000, help="records per provmark/naive run")
    p.add_argument("--mlflow-n", type=int, default=300, help="records per MLflow run (it is slow)")
    p.add_argument("--burst", type=int, default=100_000)
    p.add_argument("--sweep-n", type=int, default=8192, help="records per batch-size point")
    p.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = p.parse_args()
    if args.quick:
        args.n, args.mlflow_n, args.burst, args.sweep_n = 2000, 30, 2000, 2000
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "true")
    results: dict[str, Any] = {}
    sweeps: dict[str, list[dict[str, Any]]] = {}
    sweep_n = args.sweep_n
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        results["mlflow_tracking"] = mlflow_tracking(args.mlflow_n, folder)
        results["mlflow_tracing"] = mlflow_tracing(args.mlflow_n, folder, min(args.burst, 3000))
        results["naive_commit_each"] = naive(args.n // 4, folder, batched=False)
        results["naive_batched"] = naive(args.n, folder, batched=True)
        results["provmark_embedded"] = provmark_embedded(args.n, folder, args.burst)
        sweeps["provmark_embedded"] = provmark_batch_sizes(sweep_n, folder)
        services = {"provmark_server_pg": provmark_server, "provmark_nats": provmark_nats}
        for name, run in services.items():
            results[name], sweeps[name] = attempt(
                name, lambda run=run, name=name: run(args.n, args.burst, sweep_n, folder / name)
            )
        results["provmark_remote"], _ = attempt(
            "provmark_remote", lambda: provmark_remote(args.n, folder / "provmark_remote")
        )
    base = results["mlflow_tracking"]["records_per_s"]
    naive_base = results["naive_batched"]["records_per_s"]
    rows = [row(name, r, base, naive_base) for name, r in results.items()]
    print(table("provenance records, same fields, same machine, one run", rows))
    print(LEGEND)
    print()
    curves = []
    for i, batch in enumerate(SWEEP):
        line: dict[str, Any] = {"batch_size": batch}
        for name, short in (
            ("provmark_embedded", "embedded"),
            ("provmark_server_pg", "server"),
            ("provmark_nats", "nats"),
        ):
            point = sweeps[name][i] if len(sweeps[name]) > i else {}
            line[f"{short}_rec_s"] = point.get("records_per_s", "-")
            if short != "embedded":
                line[f"{short}_p50_ms"] = point.get("batch_p50_ms", "-")
                line[f"{short}_p99_ms"] = point.get("batch_p99_ms", "-")
        curves.append(line)
    print(
        table(
            f"throughput vs batch size ({sweep_n:,} records each; embedded: writer batch, "
            f"server: records per POST x {CLIENTS} clients, nats: per publish, end to end)",
            curves,
        )
    )
    RESULTS.mkdir(exist_ok=True)
    plot(results, sweeps, RESULTS / "compare.png")
    out = save("compare", {"results": results, "batches": sweeps, "rows": rows})
    print(f"\nresults: {out} and {RESULTS / 'compare.png'}; machine: {machine()['cpu']}")
    return 1 if any("failed" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
