"""Benchmark provmark.log.merkle: appends, proof latency and verification at 1M entries.

Usage: python bench/bench_merkle.py [--size 1000000] [--samples 10000]
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import time
from collections.abc import Callable

from provmark.log import (
    CompactRange,
    MemoryNodeStore,
    consistency_proof,
    inclusion_proof,
    root_at,
    verify_consistency,
    verify_inclusion,
)


def _latencies(fn: Callable[[int], object], args: list[int]) -> list[float]:
    out = []
    clock = time.perf_counter_ns
    for a in args:
        t0 = clock()
        fn(a)
        out.append((clock() - t0) / 1000)
    return out


def _pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    opts = parser.parse_args()
    n, rng = opts.size, random.Random(opts.seed)
    rows: list[tuple[str, str]] = []

    leaves = [hashlib.sha256(b"\x00" + i.to_bytes(8, "big")).digest() for i in range(n)]

    cr = CompactRange()
    t0 = time.perf_counter()
    for leaf in leaves:
        cr.append(leaf)
    dt = time.perf_counter() - t0
    rows.append((f"append {n:,} leaves one at a time (CompactRange)", f"{n / dt:,.0f} leaves/s"))

    cr = CompactRange()
    t0 = time.perf_counter()
    cr.extend(leaves)
    dt = time.perf_counter() - t0
    rows.append((f"extend {n:,} leaves in one call (CompactRange)", f"{n / dt:,.0f} leaves/s"))

    cr, store = CompactRange(), MemoryNodeStore()
    t0 = time.perf_counter()
    for k in range(0, n, 256):
        store.put(cr.extend(leaves[k : k + 256]))
    dt = time.perf_counter() - t0
    rows.append(
        (
            f"extend batches of 256 + MemoryNodeStore.put ({len(store):,} nodes)",
            f"{n / dt:,.0f} leaves/s",
        )
    )
    root = cr.root()

    def incl(i: int) -> list[bytes]:
        return inclusion_proof(i, n, store)

    idx = [rng.randrange(n) for _ in range(opts.samples)]
    lat = _latencies(incl, idx)
    rows.append(
        (
            f"inclusion_proof at {n:,} (p50 / p99 / max)",
            f"{statistics.median(lat):.1f} / {_pct(lat, 0.99):.1f} / {max(lat):.1f} µs",
        )
    )

    olds = [rng.randrange(1, n) for _ in range(opts.samples)]
    lat = _latencies(lambda m: consistency_proof(m, n, store), olds)
    rows.append(
        (
            f"consistency_proof m -> {n:,} (p50 / p99)",
            f"{statistics.median(lat):.1f} / {_pct(lat, 0.99):.1f} µs",
        )
    )

    lat = _latencies(lambda m: root_at(m, store), olds[:1000])
    rows.append(("root_at (p50)", f"{statistics.median(lat):.1f} µs"))

    proofs = [(i, incl(i)) for i in idx]
    t0 = time.perf_counter()
    for i, p in proofs:
        verify_inclusion(leaves[i], i, n, p, root)
    dt = time.perf_counter() - t0
    rows.append(("verify_inclusion", f"{len(proofs) / dt:,.0f} /s"))

    cons = [(m, root_at(m, store), consistency_proof(m, n, store)) for m in olds[:2000]]
    t0 = time.perf_counter()
    for m, old_root, p in cons:
        verify_consistency(m, n, old_root, root, p)
    dt = time.perf_counter() - t0
    rows.append(("verify_consistency", f"{len(cons) / dt:,.0f} /s"))

    width = max(len(r[0]) for r in rows)
    print(f"| {'measure':<{width}} | result |")
    print(f"|{'-' * (width + 2)}|--------|")
    for name, value in rows:
        print(f"| {name:<{width}} | {value} |")


if __name__ == "__main__":
    main()
