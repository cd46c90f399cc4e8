"""The second-process signer gives the same records, follows key rotation and survives a crash."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import provmark
from provmark.verification.audit import audit


def capture(pm: provmark.Provmark, n: int, tag: str) -> None:
    gen = pm.capture(model=provmark.Model("m", version="1"))(lambda p, *, t=0.5: f"{tag} {p}")
    for i in range(n):
        gen(str(i), t=0.25)


def test_pool_signs_and_rotation_restarts_it(tmp_path: Path) -> None:
    with provmark.open(tmp_path / "p.db", home=tmp_path, signing_processes=1, batch_size=64) as pm:
        capture(pm, 300, "before")
        pm.flush()
        assert pm._capture.writer._pool is not None
        old = pm._capture.writer._pool.key_id
        pm.rotate_keys()
        capture(pm, 300, "after")
        pm.flush()
        assert pm._capture.writer._pool is not None and pm._capture.writer._pool.key_id != old
        assert pm.verify("before 7").record.signature.key_id == old  # type: ignore[union-attr]
        assert pm.verify("after 7").record.signature.key_id == pm.signer.key_id  # type: ignore[union-attr]
        assert audit(pm).ok


def test_a_script_without_main_guard_runs_once(tmp_path: Path) -> None:
    """The worker must not re-import the user's __main__ (multiprocessing spawn would)."""
    import subprocess
    import sys

    script = tmp_path / "job.py"
    script.write_text(
        "import provmark\n"
        f"pm = provmark.open({str(tmp_path / 'p.db')!r}, home={str(tmp_path)!r},"
        " signing_processes=1, batch_size=32)\n"
        "print('START', flush=True)\n"
        "g = pm.capture(model='m')(lambda p: p)\n"
        "for i in range(200): g(str(i))\n"
        "pm.close()\n"
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("START") == 1
    with provmark.open(tmp_path / "p.db", home=tmp_path) as pm:
        assert pm.store.count() == 200


def test_killed_worker_falls_back_to_in_process(tmp_path: Path) -> None:
    with provmark.open(tmp_path / "p.db", home=tmp_path, signing_processes=1, batch_size=64) as pm:
        capture(pm, 100, "a")
        pm.flush()
        pool = pm._capture.writer._pool
        assert pool is not None
        os.kill(pool.pid, signal.SIGKILL)  # the worker, killed as by the OOM killer
        capture(pm, 500, "b")
        pm.flush()
        assert pm.store.count() == 600
        assert pm.stats()["rejected"] == 0
        assert audit(pm).ok


def test_worker_of_another_version_refuses_the_key() -> None:
    """A worker started after an upgrade under a running process speaks another protocol:
    it exits at once (the writer then signs in-process) instead of signing garbage."""
    import subprocess
    import sys

    from provmark._internal.signing_pool import send

    proc = subprocess.Popen(
        [sys.executable, "-m", "provmark._internal.signing_worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None
    send(proc.stdin, b"-----BEGIN PRIVATE KEY-----\n")  # the old handshake: a bare key
    proc.stdin.close()
    assert proc.stderr is not None
    err = proc.stderr.read()
    assert proc.wait(timeout=30) != 0
    assert b"protocol" in err, err
