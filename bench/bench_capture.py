"""Capture overhead on the caller's thread, and end-to-end signed + logged records/s (SQLite).

python bench/bench_capture.py [--n 50000]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import provmark
from common import percentiles, save, table


def capture_overhead(n: int) -> dict[str, float]:
    """Time per decorated call minus the bare call, minus output hashing (reported apart)."""
    with (
        tempfile.TemporaryDirectory() as d,
        provmark.open(Path(d) / "b.db", home=d, max_queue=n + 10, batch_size=2048) as pm,
    ):
        model = provmark.Model("bench/model", version="1")
        text = "the summary of the report " * 8

        def bare(prompt: str, *, temperature: float = 0.2) -> str:
            return text

        wrapped = pm.capture(model=model)(bare)
        for _ in range(2000):  # warm up (environment probe, caches)
            wrapped("prompt")
        pm.flush()
        gc.collect()
        samples = []
        for i in range(n):
            t0 = time.perf_counter_ns()
            wrapped(f"prompt number {i}", temperature=0.7)
            samples.append(time.perf_counter_ns() - t0)
        bare_ns = []
        hash_ns = []
        for _ in range(20000):
            t0 = time.perf_counter_ns()
            bare("p", temperature=0.7)
            t1 = time.perf_counter_ns()
            hashlib.sha256(text.encode()).hexdigest()
            t2 = time.perf_counter_ns()
            bare_ns.append(t1 - t0)
            hash_ns.append(t2 - t1)
        base = sorted(bare_ns)[len(bare_ns) // 2] + sorted(hash_ns)[len(hash_ns) // 2]
        pm.flush()
    return percentiles([max(0, s - base) for s in samples])


def end_to_end(
    n: int, batch_size: int, signing_processes: int, privacy: bool = True
) -> dict[str, float]:
    """Records captured, signed, stored and logged per second, flush included."""
    with (
        tempfile.TemporaryDirectory() as d,
        provmark.open(
            Path(d) / "b.db",
            home=d,
            batch_size=batch_size,
            max_queue=20_000,
            signing_processes=signing_processes,
        ) as pm,
    ):
        model = provmark.Model("bench/model", version="1")
        gen = pm.capture(model=model)(lambda prompt, *, temperature=0.2: "out " + prompt)
        for i in range(1000):
            gen(f"warm {i}")
        pm.flush()
        t0 = time.perf_counter()
        for i in range(n):
            gen(f"prompt {i}", temperature=0.5)
        pm.flush()
        elapsed = time.perf_counter() - t0
        size = (Path(d) / "b.db").stat().st_size
        count = pm.store.count()
    return {"records_per_s": n / elapsed, "seconds": elapsed, "bytes_per_record": size / count}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=50_000)
    args = p.parse_args()
    overhead = capture_overhead(min(args.n, 50_000))
    print(
        table(
            "capture overhead on the caller's thread (us, output hashing excluded)",
            [{"calls": min(args.n, 50_000), **overhead}],
        )
    )
    rows = []
    for privacy in (True, False):
        for procs in (0, 1):
            for batch in (256, 1024, 4096):
                r = end_to_end(args.n, batch, procs, privacy)
                rows.append(
                    {"privacy": privacy, "signing_process": procs, "batch_size": batch, **r}
                )
    print()
    title = f"embedded SQLite: captured + redacted/sealed (privacy) + signed + logged, n={args.n:,}"
    print(table(title, rows))
    print(f"\nresults: {save('capture', {'overhead': overhead, 'embedded': rows})}")


if __name__ == "__main__":
    main()
