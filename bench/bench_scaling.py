"""Scaling: append rate and proof time as the log grows, bytes per record, writer memory.

    python bench/bench_scaling.py [--sizes 10000,100000,1000000,10000000]
                                  [--memory-records 1000000] [--pg-records 100000]
                                  [--out scaling]

The default runs 10k, 100k, 1M and 10M log entries (about 15 GB of SQLite and some
15 minutes on a 2-core machine); ``--sizes 10000,100000,1000000`` is the short run.
PostgreSQL (``PROVMARK_BENCH_PG``, default the local ``test`` database) gives bytes
per record and proof time on a second store; it is skipped when it does not answer.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import provmark
from common import percentiles, save, table
from provmark.log.merkle import inclusion_proof
from provmark.store.base import Entry
from provmark.store.sqlite import SQLiteStore


def entries(start: int, end: int) -> list[Entry]:
    return [
        Entry(
            record_id=f"{i:08x}-0000-7000-8000-000000000000",
            payload=b'{"i":%d,"model":{"name":"bench"},"pad":"%s"}' % (i, b"x" * 600),
            signature={"alg": "Ed25519", "key_id": "0" * 16, "sig": "A" * 88},
            slug=f"pm-20260101-{i % 16**6:06x}",
            output_sha256=hashlib.sha256(str(i).encode()).hexdigest(),
            model="bench",
            model_version=None,
            operation="text_completion",
            status="ok",
            actor=f"user-{i % 100}",
            generated_at="2026-01-01T00:00:00.000000Z",
        )
        for i in range(start, end)
    ]


def log_growth(sizes: list[int]) -> list[dict[str, float]]:
    rows = []
    with tempfile.TemporaryDirectory() as d:
        store = SQLiteStore(Path(d) / "scale.db")
        size = 0
        for target in sizes:
            t0 = time.perf_counter()
            while size < target:
                step = min(20_000, target - size)
                store.append(entries(size, size + step), lambda n, r: f"scale\n{n}\n-\n")
                size += step
            rate = (target - (rows[-1]["log_size"] if rows else 0)) / (time.perf_counter() - t0)
            lat = []
            for index in range(0, target, max(1, target // 1000)):
                s = time.perf_counter_ns()
                inclusion_proof(index, target, store)
                lat.append(time.perf_counter_ns() - s)
            db_bytes = sum(p.stat().st_size for p in Path(d).glob("scale.db*"))
            p = percentiles(lat)
            rows.append(
                {
                    "log_size": target,
                    "append_records_per_s": rate,
                    "proof_p50_us": p["p50_us"],
                    "proof_p99_us": p["p99_us"],
                    "bytes_per_record": db_bytes / target,
                }
            )
            print(table("log growth (SQLite)", rows[-1:]), flush=True)
        store.close()
    return rows


def postgres_bytes(n: int) -> dict[str, float] | str:
    """Bytes per record (table + indexes + Merkle nodes) and proof time on PostgreSQL."""
    try:
        import psycopg

        from provmark.store.postgres import PostgresStore
    except ImportError as exc:
        return f"skipped: {exc}"
    admin = os.environ.get("PROVMARK_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
    name = f"pm_scale_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
    except psycopg.Error as exc:
        return f"skipped: {exc}".strip()
    url = admin.rsplit("/", 1)[0] + "/" + name
    try:
        store = PostgresStore(url)
        t0 = time.perf_counter()
        for start in range(0, n, 20_000):
            store.append(entries(start, min(n, start + 20_000)), lambda k, r: f"scale\n{k}\n-\n")
        rate = n / (time.perf_counter() - t0)
        lat = []
        for index in range(0, n, max(1, n // 1000)):
            s = time.perf_counter_ns()
            inclusion_proof(index, n, store)
            lat.append(time.perf_counter_ns() - s)
        store.close()
        with psycopg.connect(url) as conn:
            total = conn.execute("SELECT pg_database_size(current_database())").fetchone()
            empty = conn.execute(
                "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'public' AND c.relkind = 'r'"
            ).fetchone()
        p = percentiles(lat)
        return {
            "records": n,
            "append_records_per_s": rate,
            "proof_p50_us": p["p50_us"],
            "proof_p99_us": p["p99_us"],
            "bytes_per_record": float(empty[0] if empty and empty[0] else 0) / n,
            "database_bytes": float(total[0] if total else 0),
        }
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def writer_memory(n: int) -> list[dict[str, float]]:
    """RSS of a process capturing ``n`` records: it must not grow with n."""
    rows = []
    with (
        tempfile.TemporaryDirectory() as d,
        provmark.open(Path(d) / "m.db", home=d, redact=False, encrypt=False) as pm,
    ):
        gen = pm.capture(model=provmark.Model("bench/model"))(lambda p, *, seed=0: "out " + p)
        step = max(1, n // 10)
        t0 = time.perf_counter()
        for i in range(n):
            gen(f"prompt {i}", seed=i)
            if (i + 1) % step == 0:
                pm.flush()
                rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                rows.append(
                    {
                        "records": i + 1,
                        "max_rss_mb": rss_mb,
                        "records_per_s": (i + 1) / (time.perf_counter() - t0),
                    }
                )
                print(table("writer memory", rows[-1:]), flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="10000,100000,1000000,10000000")
    p.add_argument("--memory-records", type=int, default=1_000_000)
    p.add_argument("--pg-records", type=int, default=100_000)
    p.add_argument("--out", default="scaling", help="results file name (bench/results/)")
    args = p.parse_args()
    growth = log_growth([int(s) for s in args.sizes.split(",")])
    pg = postgres_bytes(args.pg_records) if args.pg_records else "skipped: --pg-records 0"
    memory = writer_memory(args.memory_records) if args.memory_records else []
    print()
    print(table("log growth (SQLite)", growth))
    print()
    if isinstance(pg, dict):
        print(table("PostgreSQL store", [pg]))
    else:
        print(f"PostgreSQL store: {pg}")
    print()
    if memory:
        print(table("writer memory over a long run (max RSS)", memory))
    results = {"growth": growth, "postgres": pg, "memory": memory}
    print(f"\nresults: {save(args.out, results)}")


if __name__ == "__main__":
    main()
