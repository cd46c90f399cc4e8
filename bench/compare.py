"""Side by side: the same provenance records through MLflow, a naive baseline and provmark.

    python bench/compare.py [--n 20000] [--mlflow-n 300] [--burst 100000] [--quick]

Every system writes the same fields per generation: model id + weights hash, input
hash, params, execution context, output hash, user and time. Prints records/s,
p50/p99 latency on the caller's thread, records lost in a burst, and the ratio to
MLflow, writes bench/results/compare.json and bench/results/compare.png.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import provmark
from common import RESULTS, machine, percentiles, save, table

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
    mlflow.set_experiment("provenance")

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
    mlflow.set_experiment("provenance-traces")

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


# ---------------------------------------------------------------- report


def plot(results: dict[str, Any], batches: list[dict[str, Any]], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib not installed: no plot)")
        return
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    a.plot([r["batch_size"] for r in batches], [r["records_per_s"] for r in batches], marker="o")
    a.set_xscale("log", base=2)
    a.set_xlabel("writer batch size")
    a.set_ylabel("records/s (signed + logged)")
    a.set_title("provmark embedded throughput vs batch size")
    names = list(results)
    for q, marker in (("p50_us", "o"), ("p99_us", "s")):
        b.scatter(names, [results[k][q] for k in names], marker=marker, label=q)
    b.set_yscale("log")
    b.set_ylabel("caller latency (us)")
    b.set_title("latency per record on the caller's thread")
    b.legend()
    b.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=20_000, help="records per provmark/naive run")
    p.add_argument("--mlflow-n", type=int, default=300, help="records per MLflow run (it is slow)")
    p.add_argument("--burst", type=int, default=100_000)
    p.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = p.parse_args()
    if args.quick:
        args.n, args.mlflow_n, args.burst = 2000, 30, 2000
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "true")
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        results["mlflow_tracking"] = mlflow_tracking(args.mlflow_n, folder)
        results["mlflow_tracing"] = mlflow_tracing(args.mlflow_n, folder, min(args.burst, 3000))
        results["naive_commit_each"] = naive(args.n // 4, folder, batched=False)
        results["naive_batched"] = naive(args.n, folder, batched=True)
        results["provmark_embedded"] = provmark_embedded(args.n, folder, args.burst)
        batches = provmark_batch_sizes(max(2000, args.n // 4), folder)
    base = results["mlflow_tracking"]["records_per_s"]
    rows = [
        {
            "system": name,
            "n": r["n"],
            "records_per_s": r["records_per_s"],
            "p50_us": r["p50_us"],
            "p99_us": r["p99_us"],
            "lost_in_burst": r.get("lost_in_burst", "-"),
            "x_mlflow": r["records_per_s"] / base,
        }
        for name, r in results.items()
    ]
    print(table("provenance records, same fields, same machine, one run", rows))
    print()
    print(table("provmark embedded: throughput vs writer batch size", batches))
    RESULTS.mkdir(exist_ok=True)
    plot(results, batches, RESULTS / "compare.png")
    out = save("compare", {"results": results, "batches": batches, "rows": rows})
    print(f"\nresults: {out} and {RESULTS / 'compare.png'}; machine: {machine()['cpu']}")


if __name__ == "__main__":
    main()
