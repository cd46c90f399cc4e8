"""The ceiling of one log: how long the PostgreSQL sequencer holds its lock per record.

    python bench/bench_sequencer.py [--records 40000] [--batches 256,1024,2048,4096]
                                    [--appenders 1,2] [--shards]

Every append to one log is serialised by one advisory lock (``PostgresStore.append``:
lock, read the tree size and the stored ids, Merkle nodes, rows by COPY, one signed
checkpoint, COMMIT). Records are signed beforehand, so what is timed is only the
work under the lock. ``appenders`` processes append at once to the same log: their
sum cannot pass 1 / (lock time per record), which is the ceiling of one log however
many servers sign and validate in front of it (docs/scale.md says what comes next).
With ``--shards`` the same appenders also run with one log each (a schema per shard,
as :mod:`provmark.shards`), to show that shards append in parallel.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from bench_server import pg_database
from common import Unavailable, save, table


def appender(url: str, home: str, records: int, batch: int) -> dict[str, Any]:
    """One process: sign ``records`` records, then append them in batches, timed."""
    import provmark
    from compare import as_record
    from provmark._internal.writer import sign_draft

    with provmark.open(url, home=home) as pm:
        drafts = [as_record(i) for i in range(records)]
        entries = [sign_draft(d, pm.signer) for d in drafts]
        store = pm.store
        store.append(entries[:batch], pm._seal)  # warm-up: connection, caches
        held = []
        cpu0, t0 = time.process_time(), time.perf_counter()
        for k in range(batch, records, batch):
            s = time.perf_counter()
            store.append(entries[k : k + batch], pm._seal)
            held.append(time.perf_counter() - s)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    n = records - batch
    return {"records": n, "wall": wall, "cpu": cpu, "append_s": sum(held)}


def run(
    url: str, home: Path, records: int, batch: int, appenders: int, sharded: bool
) -> dict[str, Any]:
    import psycopg

    urls = [url] * appenders
    if sharded:  # one log (schema, sequencer lock) per appender, as provmark.shards
        with psycopg.connect(url, autocommit=True) as conn:
            for i in range(appenders):
                conn.execute(f"CREATE SCHEMA IF NOT EXISTS shard_{i}")
        urls = [f"{url}?options=-csearch_path%3Dshard_{i}" for i in range(appenders)]
    load = os.getloadavg()[0]
    specs = [json.dumps([u, str(home), records // appenders, batch]) for u in urls]
    procs = [
        subprocess.Popen([sys.executable, __file__, "--appender", spec], stdout=subprocess.PIPE)
        for spec in specs
    ]
    outs = [json.loads(p.communicate(timeout=900)[0].decode().splitlines()[-1]) for p in procs]
    n = sum(o["records"] for o in outs)
    wall = max(o["wall"] for o in outs)
    append_s = sum(o["append_s"] for o in outs)
    return {
        "batch": batch,
        "appenders": appenders,
        "logs": appenders if sharded else 1,
        "records": n,
        "records_per_s": round(n / wall, 1),
        "append_us_per_record": round(append_s / n * 1e6, 1),
        "appender_cpu_us_per_record": round(sum(o["cpu"] for o in outs) / n * 1e6, 1),
        "load": round(load, 2),
    }


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--appender":
        print(json.dumps(appender(*json.loads(sys.argv[2]))))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--records", type=int, default=40_000)
    p.add_argument("--batches", default="256,1024,2048,4096")
    p.add_argument("--appenders", default="1,2")
    p.add_argument("--shards", action="store_true", help="also: each appender its own log")
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args()
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="provmark-bench-seq-") as tmp:
            for batch in (int(b) for b in args.batches.split(",")):
                for appenders in (int(a) for a in args.appenders.split(",")):
                    for sharded in (False, True) if args.shards and appenders > 1 else (False,):
                        with pg_database() as url:
                            rows.append(
                                run(url, Path(tmp), args.records, batch, appenders, sharded)
                            )
                            print(rows[-1], flush=True)
    except Unavailable as exc:
        print(f"skipped: {exc}", file=sys.stderr)
        return 0
    print(table("one log on PostgreSQL: the sequencer's lock (records pre-signed)", rows))
    print("append_us_per_record: time inside PostgresStore.append (lock held) per record")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    else:
        save("sequencer", {"rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
