"""Records/s into PostgreSQL through ``Provmark.ingest`` (validate, sign, store, log).

Each row: ``clients`` threads call ``pm.ingest(batch)`` with ``batch`` records per
call, until ``--records`` are stored or ``--seconds`` pass; the writer merges up to
``clients`` concurrent calls into one transaction (``batch_size = batch * clients``,
``flush_interval`` 5 ms). p50/p99 are per-call latencies; ``py_cpu_us`` and
``pg_cpu_us`` are CPU microseconds per record in this process and in the PostgreSQL
backends (load-independent, unlike records/s on a shared machine).
The last rows time ``PostgresStore.append`` alone on pre-signed entries, for
COPY and for executemany. Uses a throwaway database on 127.0.0.1, dropped at the end.

    python bench/bench_postgres.py [--records 40000] [--seconds 20]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

import provmark
from provmark._internal.writer import sign_draft
from provmark.record import new_record_id, now_utc, validate_record
from provmark.store.postgres import PostgresStore

sys.path.insert(0, str(Path(__file__).parent))
from common import save, table

ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def records(n: int, seed: str) -> list[dict[str, Any]]:
    return [
        {
            "record_id": new_record_id(),
            "generated_at": now_utc(),
            "operation": "chat",
            "model": {"name": "acme/summarizer", "version": "3.2"},
            "input": {"sha256": hashlib.sha256(f"in-{seed}-{i}".encode()).hexdigest()},
            "output": {"sha256": hashlib.sha256(f"{seed}-{i}".encode()).hexdigest(), "size": 512},
            "actor": {"user_id": f"user-{i % 50}", "service": "bench"},
            "params": {"temperature": 0.2, "max_tokens": 256},
            "usage": {"input_tokens": 812, "output_tokens": 240, "latency_ms": 912.5},
            "tags": {"app": "bench", "env": "prod"},
        }
        for i in range(n)
    ]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def backend_cpu(db: str) -> float:
    """CPU seconds used so far by the PostgreSQL backends serving ``db`` (same host)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    with psycopg.connect(db, autocommit=True) as conn:
        pids = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
        ).fetchall()
    for (pid,) in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def fresh_schema(db: str) -> str:
    name = f"b_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    return f"{db}?options=-csearch_path%3D{name}"


def ingest_row(db: str, batch: int, clients: int, total: int, seconds: float) -> dict[str, Any]:
    url = fresh_schema(db)
    home = tempfile.mkdtemp(prefix="provmark-bench-")
    per_client = total // clients // batch
    work = [[records(batch, f"{c}-{k}") for k in range(per_client)] for c in range(clients)]
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    done = [0] * clients
    # The writer merges concurrent calls into one transaction, as a server would set it up.
    opts = {
        "batch_size": batch * clients,
        "flush_interval": 0.005,
        "max_queue": 4 * batch * clients,
    }
    with provmark.open(url, home=home, **opts) as pm:
        pm.ingest(records(10, "warm"))

        def client(c: int) -> None:
            mine = []
            for chunk in work[c]:
                if time.monotonic() > deadline:
                    break
                t = time.perf_counter()
                pm.ingest(chunk)
                mine.append(time.perf_counter() - t)
                done[c] += len(chunk)
            with lock:
                latencies.extend(mine)

        threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
        pg0, cpu0 = backend_cpu(db), time.process_time()
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
        cpu, pg = time.process_time() - cpu0, backend_cpu(db) - pg0
        stored = pm.store.count() - 10
    assert stored == sum(done), (stored, done)
    return {
        "what": "Provmark.ingest",
        "batch": batch,
        "clients": clients,
        "records": stored,
        "seconds": elapsed,
        "records_per_s": stored / elapsed,
        "p50_ms": pct(latencies, 0.50) * 1000,
        "p99_ms": pct(latencies, 0.99) * 1000,
        "py_cpu_us": cpu / stored * 1e6,
        "pg_cpu_us": pg / stored * 1e6,
    }


def append_row(db: str, write: str, batch: int, total: int) -> dict[str, Any]:
    url = fresh_schema(db)
    pm = provmark.open(url, home=tempfile.mkdtemp(prefix="provmark-bench-"))
    signer = pm.signer
    entries = [
        [sign_draft(validate_record(r).payload_dict(), signer) for r in records(batch, str(k))]
        for k in range(total // batch)
    ]
    store = PostgresStore(url, write=write)
    latencies = []
    pg0, cpu0 = backend_cpu(db), time.process_time()
    start = time.perf_counter()
    for chunk in entries:
        t = time.perf_counter()
        store.append(chunk, pm._seal)
        latencies.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - start
    cpu, pg = time.process_time() - cpu0, backend_cpu(db) - pg0
    n = sum(len(c) for c in entries)
    store.close()
    pm.close()
    return {
        "what": f"store.append ({write})",
        "batch": batch,
        "clients": 1,
        "records": n,
        "seconds": elapsed,
        "records_per_s": n / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": pct(latencies, 0.99) * 1000,
        "py_cpu_us": cpu / n * 1e6,
        "pg_cpu_us": pg / n * 1e6,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--admin", default=ADMIN, help="an existing database to CREATE DATABASE from")
    ap.add_argument("--records", type=int, default=40_000, help="records per row (bound)")
    ap.add_argument("--seconds", type=float, default=20.0, help="time per row (bound)")
    ap.add_argument("--batches", default="100,500,2000")
    ap.add_argument("--clients", default="1,4")
    args = ap.parse_args(argv)
    name = f"provmark_bench_{uuid.uuid4().hex[:10]}"
    admin = psycopg.connect(args.admin, autocommit=True)
    admin.execute(f"CREATE DATABASE {name}")
    db = args.admin.rsplit("/", 1)[0] + "/" + name
    rows = []
    try:
        for batch in (int(b) for b in args.batches.split(",")):
            for clients in (int(c) for c in args.clients.split(",")):
                rows.append(ingest_row(db, batch, clients, args.records, args.seconds))
                _print(rows[-1])
        for write in ("copy", "executemany"):
            rows.append(append_row(db, write, 2000, min(args.records, 20_000)))
            _print(rows[-1])
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()
    print()
    print(table("PostgreSQL ingest (validate + sign + store + log), 127.0.0.1", rows))
    print(f"\nresults: {save('postgres', {'rows': rows})}")
    return 0


def _print(row: dict[str, Any]) -> None:
    print(
        f"{row['what']}: batch {row['batch']} x {row['clients']} clients: "
        f"{row['records_per_s']:.0f} records/s (p50 {row['p50_ms']:.1f} ms, "
        f"p99 {row['p99_ms']:.1f} ms)",
        file=sys.stderr,
    )


if __name__ == "__main__":
    sys.exit(main())
