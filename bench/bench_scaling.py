"""Scaling: append rate and proof time as the log grows, bytes per record, writer memory.

    python bench/bench_scaling.py [--sizes 10000,100000,1000000] [--memory-records 1000000]

Sizes up to 10,000,000 work (about 6.5 GB of SQLite and some minutes per step); the
default stops at 1,000,000 so a run fits in a few minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import sys
import tempfile
import time
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
    p.add_argument("--sizes", default="10000,100000,1000000")
    p.add_argument("--memory-records", type=int, default=1_000_000)
    args = p.parse_args()
    growth = log_growth([int(s) for s in args.sizes.split(",")])
    memory = writer_memory(args.memory_records)
    print()
    print(table("log growth (SQLite)", growth))
    print()
    print(table("writer memory over a long run (max RSS)", memory))
    print(f"\nresults: {save('scaling', {'growth': growth, 'memory': memory})}")


if __name__ == "__main__":
    main()
