"""Where an embedded record's time goes, stage by stage, in CPU time per record.

    python bench/bench_stages.py [--n 20000]

Runs the same capture loop as ``compare.py``'s embedded row (privacy on, SQLite,
signing process), with each stage wrapped in a timer of the CPU time of its own
thread (``time.thread_time``), and the signing process's CPU read from /proc. CPU
time, unlike wall time, barely moves when other work shares the cores, so these
figures can be compared between a quiet and a loaded machine. Also measured alone:
one Ed25519 signature with ``cryptography`` (what provmark uses) and with libsodium
(PyNaCl, when installed), and a pickle round trip of a draft (the price of moving a
stage into the signing process).
"""

from __future__ import annotations

import argparse
import collections
import os
import pickle
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import psutil

import provmark
from common import save, table
from provmark._internal import signing_pool
from provmark._internal import writer as writer_module
from provmark.capture import pipeline


def timed(owner: Any, name: str, totals: collections.Counter[str], label: str) -> None:
    original: Callable[..., Any] = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            totals[label] += time.thread_time() - start

    setattr(owner, name, wrapper)


def sign_costs(n: int = 3000) -> dict[str, float]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    payload = os.urandom(700)
    start = time.thread_time()
    for _ in range(n):
        key.sign(payload)
    out = {"ed25519_cryptography_us": (time.thread_time() - start) / n * 1e6}
    try:
        import nacl.signing
    except ImportError:
        return out
    seed = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    nacl_key = nacl.signing.SigningKey(seed)
    assert nacl_key.sign(payload).signature == key.sign(payload)  # Ed25519 is deterministic
    start = time.thread_time()
    for _ in range(n):
        nacl_key.sign(payload)
    out["ed25519_libsodium_us"] = (time.thread_time() - start) / n * 1e6
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=20_000)
    args = p.parse_args()
    totals: collections.Counter[str] = collections.Counter()
    timed(pipeline.CapturePipeline, "prepare", totals, "redact + seal (writer)")
    timed(signing_pool, "payloads", totals, "RFC 8785 payloads (writer)")
    timed(writer_module, "entry_for", totals, "entries (writer)")
    drafts: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        weights = folder / "model.safetensors"
        weights.write_bytes(b"weights")
        with provmark.open(folder / "p.db", home=folder / "home", max_queue=5000) as pm:
            timed(type(pm.store), "append", totals, "store: rows, Merkle, checkpoint (writer)")
            model = provmark.Model("acme/summarizer", version="3.2", weights=weights)

            @pm.capture(model=model)
            def generate(prompt: str, *, temperature: float = 0.2, seed: int = 0) -> str:
                return prompt.replace("summarise report", "summary")

            for i in range(500):  # warm-up; starts the signing process
                generate(f"warm up {i}", seed=i)
            pm.flush()
            totals.clear()
            pool = pm._capture.writer._pool
            worker = psutil.Process(pool.pid) if pool is not None else None
            worker_cpu0 = sum(worker.cpu_times()[:2]) if worker else 0.0
            process_cpu0 = time.process_time()
            load = os.getloadavg()[0]
            caller0, wall0 = time.thread_time(), time.perf_counter()
            for i in range(args.n):
                with pm.acting_for(f"user-{i % 50}"):
                    generate(f"summarise report {i} for ann.lee@example.com", seed=i)
            caller = time.thread_time() - caller0
            pm.flush()
            wall = time.perf_counter() - wall0
            process = time.process_time() - process_cpu0
            signing = sum(worker.cpu_times()[:2]) - worker_cpu0 if worker else 0.0
            drafts = [pm._drafts.build(_outcome(generate, model, i)) for i in range(200)]
    n = args.n
    rows = [{"stage": "capture on the caller's thread (draft, queue)", "us": caller / n * 1e6}]
    rows += [{"stage": k, "us": v / n * 1e6} for k, v in totals.items()]
    writer = process - caller - sum(totals.values())
    rows.append(
        {"stage": "rest of the main process (writer loop, GIL, SQLite)", "us": writer / n * 1e6}
    )
    rows.append({"stage": "signing process (Ed25519 + pipe)", "us": signing / n * 1e6})
    main_us = process / n * 1e6
    rows.append({"stage": "= main process total (one GIL: its ceiling)", "us": main_us})
    costs = sign_costs()
    start = time.thread_time()
    for draft in drafts:
        pickle.loads(pickle.dumps(draft, protocol=pickle.HIGHEST_PROTOCOL))
    costs["pickle_round_trip_us"] = (time.thread_time() - start) / len(drafts) * 1e6
    for r in rows:
        r["us"] = round(r["us"], 1)
    print(table(f"embedded, privacy on, CPU per record ({n:,} records)", rows))
    print(
        f"wall: {n / wall:,.0f} records/s; main-process ceiling 1e6/{main_us:.0f} = "
        f"{1e6 / main_us:,.0f}/s; load average {load:.1f}"
    )
    print({k: round(v, 1) for k, v in costs.items()})
    save("stages", {"n": n, "records_per_s": n / wall, "load": load, "rows": rows, **costs})
    return 0


def _outcome(fn: Any, model: Any, i: int) -> Any:
    from provmark.capture.core import Outcome, Spec

    return Outcome(Spec(model=model), time.time_ns(), input=f"summarise report {i}",
                   params={"temperature": 0.2, "seed": i}, output=f"summary {i}")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
