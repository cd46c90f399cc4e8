"""Verify throughput (signature + inclusion proof) and inclusion proofs at 1M log entries.

python bench/bench_verify.py [--n 5000] [--log-size 1000000]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import provmark
from common import percentiles, save, table
from provmark.log.merkle import inclusion_proof
from provmark.store.base import Entry


def verify_rate(n: int) -> dict[str, float]:
    with (
        tempfile.TemporaryDirectory() as d,
        provmark.open(Path(d) / "v.db", home=d, batch_size=2048) as pm,
    ):
        gen = pm.capture(model=provmark.Model("bench/model"))(lambda p: "output " + p)
        outputs = [gen(f"prompt {i}") for i in range(n)]
        pm.flush()
        t0 = time.perf_counter()
        lat = []
        for out in outputs:
            s = time.perf_counter_ns()
            pm.verify(out)
            lat.append(time.perf_counter_ns() - s)
        full = n / (time.perf_counter() - t0)
        # the checks alone (what an offline verifier with the evidence in hand does)
        from provmark.verification.verifier import verify_evidence

        trust = pm.log.trust()
        cp = pm.store.latest_checkpoint()
        evidence = [pm.log.evidence(s, cp) for s in pm.store.iter_records()]
        t0 = time.perf_counter()
        for ev in evidence:
            verify_evidence(ev, trust)
        checks_only = len(evidence) / (time.perf_counter() - t0)
    return {"verify_per_s": full, "checks_only_per_s": checks_only, **percentiles(lat)}


def big_log(size: int) -> dict[str, float]:
    """Fill a SQLite log with `size` leaves (unsigned checkpoints) and time the proofs."""
    with tempfile.TemporaryDirectory() as d:
        from provmark.store.sqlite import SQLiteStore

        store = SQLiteStore(Path(d) / "big.db")
        batch = 20_000
        t0 = time.perf_counter()
        for start in range(0, size, batch):
            entries = [
                Entry(
                    record_id=f"{i:08x}-0000-7000-8000-000000000000",
                    payload=b'{"i":%d}' % i,
                    signature={"alg": "Ed25519", "key_id": "00", "sig": "AA=="},
                    slug=f"pm-20260101-{i:06x}"[-18:],
                    output_sha256=hashlib.sha256(str(i).encode()).hexdigest(),
                    model="bench",
                    model_version=None,
                    operation="text_completion",
                    status="ok",
                    actor=None,
                    generated_at="2026-01-01T00:00:00.000000Z",
                )
                for i in range(start, min(start + batch, size))
            ]
            store.append(
                entries, lambda n, root: f"bench\n{n}\n{base64.b64encode(root).decode()}\n"
            )
        fill = size / (time.perf_counter() - t0)
        lat = []
        step = max(1, size // 2000)
        for index in range(0, size, step):
            s = time.perf_counter_ns()
            inclusion_proof(index, size, store)
            lat.append(time.perf_counter_ns() - s)
        db_bytes = (Path(d) / "big.db").stat().st_size
        store.close()
    return {
        "log_size": size,
        "fill_records_per_s": fill,
        "bytes_per_entry": db_bytes / size,
        **percentiles(lat),
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=5000)
    p.add_argument("--log-size", type=int, default=1_000_000)
    args = p.parse_args()
    v = verify_rate(args.n)
    print(
        table("verify (store lookup + signature + key window + checkpoint + inclusion proof)", [v])
    )
    b = big_log(args.log_size)
    print()
    print(table("inclusion proof from the SQLite store (us)", [b]))
    print(f"\nresults: {save('verify', {'verify': v, 'proofs': b})}")


if __name__ == "__main__":
    main()
