"""`make bench`: run every benchmark in turn (each prints its own table and writes
bench/results/<name>.json). Pass names to run only some:
`python bench/run_all.py compare bench_verify`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
ORDER = [
    "compare",
    "bench_capture",
    "bench_verify",
    "bench_merkle",
    "bench_scaling",
    "bench_privacy",
    "bench_redact",
    "bench_postgres",
    "bench_queue",
    "bench_server",
    "bench_remote",
    "bench_sequencer",
    "bench_stages",
    "bench_archive",
    "bench_integrations",
    "bench_otel",
    "bench_softbind",
    "bench_softbind_pg",
    "bench_trust",
]


def main() -> int:
    wanted = sys.argv[1:] or ORDER
    failed = []
    for name in wanted:
        script = HERE / f"{name}.py"
        if not script.exists():
            print(f"== {name}: no such benchmark", flush=True)
            failed.append(name)
            continue
        print(f"\n== {name}", flush=True)
        if subprocess.run([sys.executable, str(script)], check=False).returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
