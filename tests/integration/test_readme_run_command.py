"""The README's run command works in a fresh virtual environment with only the
``server`` extra: ``pip install -e ".[server]" && provmark serve --demo``.

The suite itself runs with every extra installed, so a module that the demo or the
server imports but the ``server`` extra does not pull in would go unnoticed without
this (it happened once: soft binding needs numpy).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from server_harness import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_server_extra_alone_runs_the_demo(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    done = subprocess.run(
        [*pip, "-e", f"{ROOT}[server]"], capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVMARK_")}
    env["HOME"] = str(tmp_path)  # the demo folder and keys go here, not to the real home
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(venv / "bin" / "provmark"), "serve", "--demo", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
        )
        try:
            ready = False
            for _ in range(600):
                if proc.poll() is not None:
                    break
                try:
                    ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).is_success
                except httpx.HTTPError:
                    ready = False
                if ready:
                    break
                time.sleep(0.1)
            assert ready, log.read_text()[-3000:]
            page = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
            assert page.status_code == 200
            assert "auditor" in log.read_text()  # the tokens to sign in with are printed
        finally:
            proc.terminate()
            proc.wait(30)
