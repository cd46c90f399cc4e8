"""Trust costs: checkpoint signing + 2 witnesses end to end; PKCS#11 signatures/s vs a file key.

python bench/bench_trust.py [--rounds 200] [--sigs 3000] [--records 5000]

The witnesses are two `provmark witness serve` processes on 127.0.0.1; the HSM is
SoftHSM2 (Debian package softhsm2) in a temporary token folder.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import provmark
from common import percentiles, save, table
from provmark.crypto.keys import ED25519, ES256, LocalSigner, generate_private_key
from provmark.log.note import Checkpoint
from provmark.record import new_record_id, now_utc
from provmark.witness import TrustArchive, WitnessGroup, parse_witnesses

PIN = "1234"


def record(i: int) -> dict[str, Any]:
    data = f"bench output {i}".encode()
    return {
        "record_id": new_record_id(),
        "schema_version": "1",
        "generated_at": now_utc(),
        "operation": "chat",
        "model": {"name": "bench/model", "version": "1"},
        "output": {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)},
    }


def start_witness(folder: Path, name: str, log_key: str) -> tuple[subprocess.Popen[str], str]:
    cli = [sys.executable, "-m", "provmark.cli", "witness"]
    subprocess.run([*cli, "init", str(folder), "--name", name], check=True, capture_output=True)
    subprocess.run([*cli, "add-log", str(folder), log_key], check=True, capture_output=True)
    proc = subprocess.Popen(
        [*cli, "serve", str(folder), "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().split()[-1]
    vkey = proc.stdout.readline().strip()
    return proc, f"{vkey} {url}"


def ms(row: dict[str, float]) -> dict[str, float]:
    return {k.replace("_us", "_ms"): v / 1000 for k, v in row.items()}


def witnessing(rounds: int, batch: int, tmp: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    tmp.mkdir(parents=True, exist_ok=True)
    with provmark.open(tmp / "w.db", home=tmp / "home", flush_interval=0.005) as pm:
        log_key = pm.log_verifier.key_string()
        procs = [start_witness(tmp / f"w{n}", f"bench.test/w{n}", log_key) for n in (1, 2)]
        try:
            witnesses = parse_witnesses("".join(line + "\n" for _, line in procs))
            with TrustArchive.for_log(pm.log) as archive, WitnessGroup(witnesses) as group:
                pm.ingest([record(i) for i in range(batch)])
                group.witness(pm.log, archive)  # warm up connections
                seal, wit, e2e = [], [], []
                key = pm.log.note_signing_key()
                for r in range(rounds):
                    t0 = time.perf_counter_ns()
                    pm.ingest([record(r * batch + i) for i in range(batch)])
                    t1 = time.perf_counter_ns()
                    report = group.witness(pm.log, archive)
                    t2 = time.perf_counter_ns()
                    assert len(report.cosigned) == 2, report.refused
                    cp = Checkpoint(pm.store.origin, report.size, hashlib.sha256(b"x").digest())
                    s0 = time.perf_counter_ns()
                    cp.sign(pm.store.origin, key)
                    seal.append(time.perf_counter_ns() - s0)
                    wit.append(t2 - t1)
                    e2e.append(t2 - t0)
        finally:
            for proc, _ in procs:
                proc.terminate()
                proc.wait(10)
    rows.append({"what": "checkpoint note signing (file key)", **ms(percentiles(seal))})
    rows.append({"what": "2 witnesses cosign (parallel HTTP)", **ms(percentiles(wit))})
    rows.append({"what": f"ingest {batch} + seal + 2 witnesses", **ms(percentiles(e2e))})
    return rows


def softhsm(tmp: Path) -> str:
    util = shutil.which("softhsm2-util")
    if util is None:
        raise SystemExit("softhsm2 is not installed (apt-get install softhsm2)")
    (tmp / "tokens").mkdir(parents=True)
    conf = tmp / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tmp / 'tokens'}\nobjectstore.backend = file\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)  # before the module is loaded in this process
    for label in ("bench", "records"):
        subprocess.run(
            [util, "--init-token", "--free", "--label", label, "--pin", PIN, "--so-pin", "0000"],
            check=True,
            capture_output=True,
        )
    return str(conf)


def signatures(n: int, tmp: Path) -> list[dict[str, Any]]:
    from provmark.crypto.pkcs11 import Pkcs11Signer, Pkcs11Token

    data = os.urandom(900)  # about one canonical record
    token = Pkcs11Token(None, "bench", PIN)
    rows: list[dict[str, Any]] = []
    try:
        for alg in (ED25519, ES256):
            token.generate(f"bench-{alg}", alg)
            for name, signer in (
                ("file key", LocalSigner(generate_private_key(alg))),
                ("PKCS#11 SoftHSM2", Pkcs11Signer(token, f"bench-{alg}")),
            ):
                lat = []
                t0 = time.perf_counter()
                for _ in range(n):
                    s = time.perf_counter_ns()
                    signer.sign(data)
                    lat.append(time.perf_counter_ns() - s)
                rate = n / (time.perf_counter() - t0)
                p = percentiles(lat)
                rows.append(
                    {
                        "alg": alg,
                        "signer": name,
                        "sigs_per_s": rate,
                        "p50_us": p["p50_us"],
                        "p99_us": p["p99_us"],
                    }
                )
    finally:
        token.close()
    return rows


def records_rate(n: int, tmp: Path) -> list[dict[str, Any]]:
    from provmark.crypto.pkcs11 import Pkcs11KeyStore

    rows: list[dict[str, Any]] = []
    batch = [record(i) for i in range(n)]
    for name in ("file key", "PKCS#11 SoftHSM2"):
        home = tmp / f"home-{len(rows)}"
        ks = (
            Pkcs11KeyStore(home / "keys", token_label="records", pin=PIN)
            if name.startswith("PKCS")
            else None
        )
        with provmark.open(tmp / f"r{len(rows)}.db", home=home, keystore=ks) as pm:
            pm.ingest(batch[:100])
            t0 = time.perf_counter()
            pm.ingest(batch[100:])
            rate = (n - 100) / (time.perf_counter() - t0)
        if ks is not None:
            ks.close()
        rows.append({"signer": name, "records_per_s": rate})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--sigs", type=int, default=3000)
    ap.add_argument("--records", type=int, default=5000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        softhsm(tmp / "hsm")
        wit = witnessing(args.rounds, args.batch, tmp / "wit")
        print(table(f"checkpoint + 2 witnesses, {args.rounds} rounds (ms)", wit))
        sigs = signatures(args.sigs, tmp)
        print()
        print(table(f"signatures of a 900-byte payload, {args.sigs} each, one thread", sigs))
        recs = records_rate(args.records, tmp)
        print()
        print(table(f"records signed, stored and logged ({args.records}, ingest)", recs))
    path = save("trust", {"witnessing": wit, "signatures": sigs, "records": recs})
    print(f"\nsaved {path}")


if __name__ == "__main__":
    main()
