"""Benchmark ``provmark serve``: batch ingest records/s with p50/p99 request latency, and
``POST /v1/verify`` requests/s, on SQLite and (when it answers) PostgreSQL.

The server runs in its own process; the load comes from a second process, to
127.0.0.1 only, bounded in records and seconds.

Usage: python bench/bench_server.py [--records 60000] [--batch 1000] [--clients 4]
                                    [--seconds 30] [--verify 3000] [--backends sqlite,postgres]
                                    [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from common import Unavailable

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


_BUSY = (0, 429, 503)  # 0: no answer (transport error); retried with the same body


def _seconds(retry_after: str | None) -> float:
    try:
        return float(retry_after or 0.5)
    except ValueError:  # an HTTP date
        return 1.0


def _pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] if values else 0.0


# ---------------------------------------------------------------- load process


def _records(n: int, tag: str) -> list[dict[str, Any]]:
    from provmark.record import new_record_id, now_utc

    now = now_utc()
    out = []
    for i in range(n):
        text = f"{tag} output {i}".encode()
        out.append(
            {
                "record_id": new_record_id(),
                "generated_at": now,
                "operation": "chat",
                "model": {"name": "acme/summarizer", "version": "3.2", "provider": "acme"},
                "params": {"temperature": 0.2, "max_tokens": 256},
                "input": {
                    "sha256": hashlib.sha256(b"prompt %d" % i).hexdigest(),
                    "media_type": "text/plain",
                },
                "output": {
                    "sha256": hashlib.sha256(text).hexdigest(),
                    "size": len(text),
                    "media_type": "text/plain",
                },
                "actor": {"user_id": f"user-{i % 97}", "service": "bench"},
                "tags": {"bench": tag},
                "usage": {"input_tokens": 812, "output_tokens": 96, "latency_ms": 412.5},
            }
        )
    return out


def post_batches(
    url: str,
    token: str,
    bodies: list[tuple[bytes, int]],
    clients: int,
    seconds: float,
    retries: int = 5,
) -> dict[str, Any]:
    """POST ``(body, records in it)`` to ``/v1/records`` from ``clients`` threads.

    A 429/503 (server busy) or a transport error is retried with the same body,
    up to ``retries`` times (storing is idempotent by record id). Returns
    ``records`` acknowledged (200), the wall ``seconds``, the latency of each
    acknowledged request in seconds, ``retried`` and the first ``errors``.
    """
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    next_body = iter(range(len(bodies)))
    deadline = time.monotonic() + seconds
    sent = [0, 0]  # records acknowledged, requests retried

    def worker() -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=120) as c:
            while time.monotonic() < deadline:
                with lock:
                    i = next(next_body, None)
                if i is None:
                    return
                body, size = bodies[i]
                for attempt in range(retries + 1):
                    t0 = time.perf_counter()
                    try:
                        r = c.post("/v1/records", content=body)
                    except httpx.TransportError as exc:
                        status, text, wait = 0, f"{type(exc).__name__}: {exc}", 0.5
                    else:
                        status, text = r.status_code, r.text[:200]
                        wait = _seconds(r.headers.get("retry-after"))
                    dt = time.perf_counter() - t0
                    retry = status in _BUSY and attempt < retries
                    with lock:
                        if status == 200:
                            latencies.append(dt)
                            sent[0] += size
                        elif retry:
                            sent[1] += 1
                        else:
                            errors.append(f"{status} {text}")
                    if not retry:
                        break
                    time.sleep(min(wait, 2.0))

    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {
        "records": sent[0],
        "seconds": time.perf_counter() - start,
        "latencies": latencies,
        "retried": sent[1],
        "errors": errors,
    }


def load(
    url: str, token: str, records: int, batch: int, clients: int, seconds: float, verify: int
) -> dict[str, Any]:
    """Runs in the load process: ingest phase, then verify phase."""
    tag = uuid.uuid4().hex[:8]
    data = _records(records, tag)
    bodies = [
        (json.dumps(data[i : i + batch]).encode(), len(data[i : i + batch]))
        for i in range(0, len(data), batch)
    ]
    posted = post_batches(url, token, bodies, clients, seconds)
    latencies: list[float] = posted["latencies"]
    errors: list[str] = posted["errors"]
    sent: int = posted["records"]
    ingest_s: float = posted["seconds"]
    lock = threading.Lock()

    shas = [d["output"]["sha256"] for d in data[:sent]]
    v_lat: list[float] = []
    v_ok = [0]
    v_deadline = time.monotonic() + seconds
    counter = iter(range(min(verify, len(shas))))

    def verify_worker() -> None:
        with httpx.Client(
            base_url=url, headers={"authorization": f"Bearer {token}"}, timeout=60
        ) as c:
            while time.monotonic() < v_deadline:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                t0 = time.perf_counter()
                r = c.post("/v1/verify", json={"sha256": shas[i]})
                dt = time.perf_counter() - t0
                with lock:
                    v_lat.append(dt)
                    if r.status_code == 200 and r.json().get("verified"):
                        v_ok[0] += 1
                    else:
                        errors.append(f"verify {r.status_code} {r.text[:200]}")

    start = time.perf_counter()
    threads = [threading.Thread(target=verify_worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    verify_s = time.perf_counter() - start
    return {
        "records": sent,
        "ingest_seconds": round(ingest_s, 3),
        "records_per_s": round(sent / ingest_s, 1) if ingest_s else 0,
        "batch": batch,
        "clients": clients,
        "request_p50_ms": round(_pct(latencies, 0.50) * 1000, 1),
        "request_p99_ms": round(_pct(latencies, 0.99) * 1000, 1),
        "verify_requests": len(v_lat),
        "verified": v_ok[0],
        "verify_per_s": round(len(v_lat) / verify_s, 1) if verify_s else 0,
        "verify_p99_ms": round(_pct(v_lat, 0.99) * 1000, 1),
        "errors": errors[:5],
    }


# ---------------------------------------------------------------- orchestration


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(
    name: str, db: str, folder: Path, *, writer_batch: int = 2048, workers: int = 1
) -> Iterator[tuple[str, str]]:
    """``provmark serve`` on a free 127.0.0.1 port against ``db``: yields (url, token).

    The token is a fresh developer token (may ingest); the server is stopped on exit.
    """
    from provmark.server.auth import TokenStore
    from provmark.server.state import StateDB

    port = _free_port()
    state = str(folder / f"{name}-state.db")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVMARK_")}
    cmd = [sys.executable, "-m", "provmark.cli", "serve", "--db", db,
           "--home", str(folder / "home"), "--state", state, "--port", str(port),
           "--no-webhooks", "--log-level", "warning",
           "--batch-size", str(writer_batch), "--workers", str(workers)]  # fmt: skip
    log_path = folder / f"{name}-server.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if proc.poll() is not None:
                break
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError(f"{name} server did not start: {log_path.read_text()[-2000:]}")
        if proc.poll() is not None:
            raise RuntimeError(f"{name} server exited: {log_path.read_text()[-2000:]}")
        sdb = StateDB(state)
        token = TokenStore(sdb).create("developer", "bench")[0]
        sdb.close()
        yield url, token
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def run_backend(name: str, db: str, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVMARK_")}
    running = server(name, db, folder, writer_batch=args.writer_batch, workers=args.workers)
    with running as (url, token):
        spec = json.dumps(
            [url, token, args.records, args.batch, args.clients, args.seconds, args.verify]
        )
        out = subprocess.run(
            [sys.executable, __file__, "--load-process", spec], capture_output=True, text=True,
            timeout=args.seconds * 3 + 120, env=env,
        )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["backend"] = name
    return result


def create_pg_database(admin: str = PG_ADMIN) -> tuple[str, str]:
    """A fresh throwaway database on the server of ``admin``: (name, url).

    Raises :class:`Unavailable` when the PostgreSQL store or server is not there.
    """
    try:
        import psycopg

        import provmark.store.postgres  # noqa: F401
    except ImportError as exc:
        raise Unavailable(f"no PostgreSQL driver ({exc.name} not installed)") from None
    name = f"provmark_bench_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"CREATE DATABASE {name}")
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise Unavailable(f"PostgreSQL at {admin.split('@')[-1]}: {first}") from None
    return name, admin.rsplit("/", 1)[0] + "/" + name


def drop_pg_database(name: str, admin: str = PG_ADMIN) -> None:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextlib.contextmanager
def pg_database(admin: str = PG_ADMIN) -> Iterator[str]:
    """The URL of a throwaway database, dropped on exit (:class:`Unavailable` if none)."""
    name, url = create_pg_database(admin)
    try:
        yield url
    finally:
        drop_pg_database(name, admin)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--load-process":
        print(json.dumps(load(*json.loads(sys.argv[2]))))
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--records", type=int, default=60_000)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--seconds", type=float, default=30.0, help="bound of each phase")
    p.add_argument("--verify", type=int, default=3000, help="verify requests")
    p.add_argument("--writer-batch", type=int, default=2048)
    p.add_argument(
        "--workers", type=int, default=1, help="server processes (provmark serve --workers)"
    )
    p.add_argument("--backends", default="sqlite,postgres")
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="provmark-bench-server-") as tmp:
        folder = Path(tmp)
        for backend in args.backends.split(","):
            if backend == "sqlite":
                results.append(run_backend("sqlite", str(folder / "bench.db"), folder, args))
            elif backend == "postgres":
                try:
                    with pg_database() as db:
                        results.append(run_backend("postgres", db, folder, args))
                except Unavailable as exc:
                    print(f"postgres: skipped ({exc})", file=sys.stderr)
    head = f"{'backend':<9} {'records':>8} {'rec/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
    head += f"{'verify/s':>9} {'v p99 ms':>9}  (batch {args.batch}, {args.clients} clients, "
    print(head + f"{args.workers} server processes)")
    for r in results:
        line = f"{r['backend']:<9} {r['records']:>8} {r['records_per_s']:>9.0f} "
        line += f"{r['request_p50_ms']:>8.1f} {r['request_p99_ms']:>8.1f} "
        line += f"{r['verify_per_s']:>9.0f} {r['verify_p99_ms']:>9.1f}"
        print(line + (f"  errors: {r['errors']}" if r["errors"] else ""))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
