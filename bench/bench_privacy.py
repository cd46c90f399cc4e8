"""Privacy overhead per record for a 2 KB prompt: caller thread and writer thread apart.

    python bench/bench_privacy.py [--n 20000] [--save]

* caller thread: ``pm.record(...)`` with a 2 KB prompt, privacy on (the default) and
  off (``redact=False``); the redaction and encryption are not on this thread.
  Target (design section 7): p50 <= 20 us, p99 <= 200 us.
* writer thread: what ``Privacy.protect`` costs per record (redaction, HMACs, subject
  hash), and the vault write (AES-256-GCM + one INSERT per field, one transaction per
  batch) amortised per record; for a clean and a PII-heavy prompt.
* durable=True: the same work moves to the caller's thread, before the journal fsync.
* end to end: records/s captured + redacted + encrypted + signed + logged, on vs off.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import provmark
from common import percentiles, save, table
from provmark.canonical import Fragment
from provmark.capture.draft import Draft
from provmark.privacy import Privacy
from provmark.record import new_record_id

CLEAN = (
    "You are a helpful assistant. Summarize the following meeting notes in 3 bullet points "
    "for a general audience, in a neutral tone, under 120 words. The committee met on "
    "Tuesday to discuss the budget for the next fiscal year; members raised concerns about "
    "rising costs in healthcare and education (roughly 12 percent above plan). After a long "
    "debate they agreed to postpone the vote until more data is available. "
)
PII = (
    "Customer jo.smith@example.com (+44 20 7946 0958) paid with 4111 1111 1111 1111 and asks "
    "for a refund to DE89 3704 0044 0532 0130 00; login from 203.0.113.7, key "
    "sk-proj-abcdefghijklmnopqrstuvwxyz0123. "
)
MODEL = provmark.Model("bench/model", version="1")


def prompt(kind: str, i: int = 0) -> str:
    base = CLEAN if kind == "clean" else CLEAN[:200] + PII
    text = (base * (2048 // len(base) + 1))[: 2048 - 12]
    return f"{text} #{i:010d}"


def caller_overhead(n: int, **options: Any) -> dict[str, float]:
    """Time of ``with pm.record(input=2 KB) as rec: rec.set_output(...)`` on this thread."""
    with (
        tempfile.TemporaryDirectory() as d,
        provmark.open(Path(d) / "b.db", home=d, max_queue=n + 10, batch_size=2048, **options) as pm,
    ):
        texts = [prompt("pii", i) for i in range(n)]
        for i in range(1000):
            with pm.acting_for("user-1"), pm.record(model=MODEL, input=texts[i]) as rec:
                rec.set_output("summary")
        pm.flush()
        gc.collect()
        samples = []
        for i in range(n):
            t0 = time.perf_counter_ns()
            with pm.record(model=MODEL, input=texts[i]) as rec:
                rec.set_output("summary")
            samples.append(time.perf_counter_ns() - t0)
        pm.flush()
    return percentiles(samples)


# params as captured from keyword arguments: numbers only (the common case), or text
# with PII in it (redacted and sealed like the prompt since params are covered too)
PARAMS: dict[str, dict[str, Any] | None] = {
    "none": None,
    "numeric": {"temperature": 0.2, "top_p": 0.9, "max_tokens": 256, "seed": 7},
    "text+pii": {
        "temperature": 0.2,
        "system": "You answer for the support desk of Acme.",
        "user_email": "jo.smith@example.org",
        "tools": [{"name": "call", "note": "callback +44 20 7946 0123"}],
    },
}


def _draft(text: str, user: str, params: dict[str, Any] | None = None) -> Draft:
    draft: dict[str, Any] = {
        "record_id": new_record_id(),
        "input": {},
        "context": Fragment({}),
        "actor": {"user_id": user},
    }
    if params is not None:
        draft["params"] = Fragment(params)
    return Draft(draft, raw_input=text)


def writer_cost(n: int, kind: str, params: str = "none") -> dict[str, Any]:
    """Per-record writer-thread cost, in us: the detectors alone, ``protect`` (detectors +
    HMACs + subject hash + references), their per-record difference, and the vault write
    (AES-256-GCM + INSERT, one transaction per 512) amortised per record."""
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as d, provmark.open(Path(d) / "b.db", home=d) as pm:
        privacy = pm.privacy
        assert isinstance(privacy, Privacy) and privacy.vault is not None
        texts = [prompt(kind, i) for i in range(n)]
        drafts = [_draft(t, f"user-{rng.randrange(50)}", PARAMS[params]) for t in texts]
        redact, protect, extra = [], [], []
        store_ns = 0
        for start in range(0, n, 512):
            chunk = slice(start, start + 512)
            for text, draft in zip(texts[chunk], drafts[chunk], strict=True):
                t0 = time.perf_counter_ns()
                privacy.redact_text(text)
                t1 = time.perf_counter_ns()
                privacy.protect(draft)
                t2 = time.perf_counter_ns()
                redact.append(t1 - t0)
                protect.append(t2 - t1)
                extra.append((t2 - t1) - (t1 - t0))
            t0 = time.perf_counter_ns()
            privacy.flush()  # what the writer does just before storing a batch
            store_ns += time.perf_counter_ns() - t0
    p50 = {k: percentiles(v)["p50_us"] for k, v in (("r", redact), ("p", protect), ("x", extra))}
    store = store_ns / n / 1000
    return {
        "prompt": kind,
        "params": params,
        "detectors_p50": p50["r"],
        "protect_p50": p50["p"],
        "protect_p99": percentiles(protect)["p99_us"],
        "seal_overhead_p50": p50["x"],
        "encrypt_store": store,
        "writer_total_p50": p50["p"] + store,
    }


def durable_caller(n: int, **options: Any) -> dict[str, float]:
    with (
        tempfile.TemporaryDirectory() as d,
        provmark.open(Path(d) / "b.db", home=d, durable=True, **options) as pm,
    ):
        samples = []
        for i in range(n):
            t0 = time.perf_counter_ns()
            with pm.acting_for("user-2"), pm.record(model=MODEL, input=prompt("pii", i)) as r:
                r.set_output("summary")
            samples.append(time.perf_counter_ns() - t0)
    return percentiles(samples)


def end_to_end(n: int, kind: str, **options: Any) -> float:
    with (
        tempfile.TemporaryDirectory() as d,
        provmark.open(Path(d) / "b.db", home=d, batch_size=1024, max_queue=n + 10, **options) as pm,
    ):
        texts = [prompt(kind, i) if kind != "short" else f"prompt {i}" for i in range(n)]
        pm.flush()
        t0 = time.perf_counter()
        for i, text in enumerate(texts):
            with pm.acting_for(f"user-{i % 100}"), pm.record(model=MODEL, input=text) as rec:
                rec.set_output(f"out {i}")
        pm.flush()
        return n / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=20_000)
    p.add_argument("--save", action="store_true")
    args = p.parse_args()
    n = args.n
    caller = [
        {"privacy": "on (default)", "calls": n, **caller_overhead(n)},
        {"privacy": "off (redact=False)", "calls": n, **caller_overhead(n, redact=False)},
    ]
    print(table("caller thread: pm.record() with a 2 KB prompt (us, hashing included)", caller))
    writer = [writer_cost(min(n, 4096), kind) for kind in ("clean", "pii")]
    writer += [writer_cost(min(n, 4096), "clean", params) for params in ("numeric", "text+pii")]
    print()
    print(table("writer thread: per record (us)", writer))
    durable = [
        {"privacy": "on", **durable_caller(300)},
        {"privacy": "off", **durable_caller(300, redact=False)},
    ]
    print()
    print(table("durable=True: caller thread incl. fsync'd journal (us)", durable))
    e2e = [
        {"prompt": kind, "privacy": on, "records_per_s": end_to_end(n, kind, redact=on == "on")}
        for kind in ("short", "clean")
        for on in ("on", "off")
    ]
    print()
    print(table("end to end: captured + redacted + encrypted + signed + logged", e2e))
    if args.save:
        out = save("privacy", {"caller": caller, "writer": writer, "durable": durable, "e2e": e2e})
        print(f"\nresults: {out}")


if __name__ == "__main__":
    main()
