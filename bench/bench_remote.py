"""One application process capturing through the remote client into ``provmark serve``.

    python bench/bench_remote.py [--n 30000] [--workers 1] [--backend postgres|sqlite]
                                 [--runs 1] [--json PATH]

The server runs in its own process(es) (``provmark serve --workers N``, privacy on);
the application is a second process that calls a ``@pm.capture`` function in a
loop, as fast as it can, and then ``pm.flush()``: so records/s is end to end
(captured, sent, validated, redacted, signed, logged and acknowledged). Also printed:
the caller's latency percentiles and the CPU the application process spent per record
(``client_cpu_us``: its own cost, independent of what else runs on the machine),
with the load average, because the bench machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).parent))
from common import Unavailable, percentiles, save, table


def _proc_cpu(p: psutil.Process) -> float:
    try:
        t = p.cpu_times()
    except psutil.Error:
        return 0.0
    return float(t.user + t.system)


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def application(
    url: str, token: str, n: int, folder: str, options: dict[str, Any]
) -> dict[str, Any]:
    """The application process: capture ``n`` generations through the remote client."""
    import provmark

    weights = Path(folder) / "model.safetensors"
    weights.write_bytes(b"weights")
    with provmark.open(url, token=token, journal_dir=Path(folder) / "journal", **options) as pm:
        model = provmark.Model("acme/summarizer", version="3.2", weights=weights)

        @pm.capture(model=model)
        def generate(
            prompt: str, *, temperature: float = 0.2, top_p: float = 0.9, seed: int = 0
        ) -> str:
            return prompt.replace("summarise report", "summary")

        for i in range(200):  # warm-up: connection, environment probe, first batch
            generate(f"warm up {i}", seed=i)
        pm.flush()
        lat = []
        cpu0, t0 = _cpu(), time.perf_counter()
        for i in range(n):
            s = time.perf_counter_ns()
            with pm.acting_for(f"user-{i % 50}"):
                generate(f"summarise report {i} for ann.lee@example.com", seed=i)
            lat.append(time.perf_counter_ns() - s)
        pm.flush(timeout=600)
        wall, cpu = time.perf_counter() - t0, _cpu() - cpu0
        rejected = len(pm.rejected)
    return {
        "n": n,
        "records_per_s": n / wall,
        "seconds": round(wall, 3),
        "client_cpu_us": round(cpu / n * 1e6, 1),
        "rejected": rejected,
        **percentiles(lat),
    }


def run(
    n: int, workers: int, backend: str, folder: Path, options: dict[str, Any]
) -> dict[str, Any]:
    from bench_server import pg_database, server

    def measure(db: str) -> dict[str, Any]:
        with server(f"remote-{backend}", db, folder, workers=workers) as (url, token):
            env = {k: v for k, v in os.environ.items() if not k.startswith("PROVMARK_")}
            env["PROVMARK_HOME"] = str(folder / "client-home")
            spec = json.dumps([url, token, n, str(folder), options])
            cmd = [sys.executable, __file__, "--application", spec]
            if os.environ.get("BENCH_PYSPY"):  # a profile of the application process
                cmd = ["py-spy", "record", "-r", "200", "-f", "raw", "-o",
                       os.environ["BENCH_PYSPY"], "--", *cmd]  # fmt: skip
            servers = psutil.Process().children(recursive=True)
            cpu0 = sum(_proc_cpu(s) for s in servers)
            spies = [
                subprocess.Popen(["py-spy", "record", "-r", "200", "-f", "raw", "-s", "-o",
                                  f"{os.environ['BENCH_PYSPY_SERVER']}.{s.pid}", "--pid",
                                  str(s.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for s in servers[:1] if os.environ.get("BENCH_PYSPY_SERVER")
            ]  # fmt: skip
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
            server_cpu = sum(_proc_cpu(s) for s in servers) - cpu0
            for spy in spies:
                spy.send_signal(2)
                spy.wait(60)
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-3000:])
        last = [ln for ln in out.stdout.splitlines() if ln.startswith("{")][-1]
        result: dict[str, Any] = json.loads(last)
        # the server's CPU includes the warm-up (200 records): negligible beside n
        result["server_cpu_us"] = round(server_cpu / result["n"] * 1e6, 1)
        return result

    load = os.getloadavg()[0]
    if backend == "postgres":
        with pg_database() as db:
            result = measure(db)
    else:
        result = measure(str(folder / "remote.db"))
    return {
        "backend": backend,
        "server_workers": workers,
        **options,
        "load_before": round(load, 2),
        "load_after": round(os.getloadavg()[0], 2),
        **result,
    }


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--application":
        print(json.dumps(application(*json.loads(sys.argv[2]))))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=30_000)
    p.add_argument("--workers", type=int, default=2, help="provmark serve --workers")
    p.add_argument("--backend", default="postgres", choices=["postgres", "sqlite"])
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--batch", type=int, help="the client's batch_size (default: its own)")
    p.add_argument("--senders", type=int, help="requests in flight (default: the client's)")
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args()
    rows = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="provmark-bench-remote-") as tmp:
            try:
                options = {"batch_size": args.batch, "senders": args.senders}
                options = {k: v for k, v in options.items() if v is not None}
                rows.append(run(args.n, args.workers, args.backend, Path(tmp), options))
            except Unavailable as exc:
                print(f"skipped: {exc}", file=sys.stderr)
                return 0
    print(table("one application process -> remote client -> provmark serve", rows))
    data = {"rows": rows}
    if args.json:
        Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
    else:
        save("remote", data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
