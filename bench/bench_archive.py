"""Archive and restore throughput (records/s) on the embedded SQLite store.

Archive = read the rows, build inclusion proofs, write Parquet partitions, write and sign
the manifest, re-read and verify every record (signature + inclusion), drop the hot rows.
Restore = verify the archive against the live log, re-insert the rows.
Verify-in-archive = ``provmark verify FILE --archive PATH`` for one output (p50/p99).

python bench/bench_archive.py [--n 20000] [--lookups 50]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import provmark
from common import percentiles, save, table
from provmark.governance import create_archive, restore_archive, verify_in_archive
from provmark.record import new_record_id, now_utc


def run(n: int, lookups: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as d, provmark.open(Path(d) / "a.db", home=d) as pm:
        outputs = [f"output {i}".encode() for i in range(n)]
        for start in range(0, n, 5000):
            pm.ingest(
                [
                    {
                        "record_id": new_record_id(),
                        "generated_at": now_utc(),
                        "model": {"name": "bench/model", "version": "1"},
                        "output": {"sha256": hashlib.sha256(o).hexdigest(), "size": len(o)},
                        "tags": {"bench": "archive"},
                    }
                    for o in outputs[start : start + 5000]
                ]
            )
        records = list(pm.store.iter_records())
        dest = str(Path(d) / "cold")

        t0 = time.perf_counter()
        made = create_archive(pm, records, dest)
        secs = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in Path(dest).rglob("*.parquet"))
        rows.append(
            {
                "step": "archive (write+verify+drop hot)",
                "records": made.records,
                "seconds": round(secs, 2),
                "records_per_s": round(made.records / secs),
                "bytes_per_record": round(size / made.records),
            }
        )

        lat = []
        for i in range(0, n, max(1, n // lookups)):
            sha = hashlib.sha256(outputs[i]).hexdigest()
            s = time.perf_counter_ns()
            verify_in_archive(dest, sha)
            lat.append(time.perf_counter_ns() - s)
        p = percentiles(lat)
        rows.append(
            {
                "step": "verify one output in the archive",
                "records": len(lat),
                "seconds": round(sum(lat) / 1e9, 2),
                "records_per_s": round(len(lat) / (sum(lat) / 1e9)),
                "bytes_per_record": f"p50 {p['p50_us']:.0f} us, p99 {p['p99_us']:.0f} us",
            }
        )

        t0 = time.perf_counter()
        result = restore_archive(pm, dest)
        secs = time.perf_counter() - t0
        rows.append(
            {
                "step": "restore (verify+insert)",
                "records": result["restored"],
                "seconds": round(secs, 2),
                "records_per_s": round(result["restored"] / secs),
                "bytes_per_record": "",
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--lookups", type=int, default=50)
    args = ap.parse_args()
    rows = run(args.n, args.lookups)
    print(table(f"archive / restore, {args.n} records (SQLite, local folder)", rows))
    save("archive", {"n": args.n, "rows": rows})


if __name__ == "__main__":
    main()
