"""The README's run command works in a fresh virtual environment with only the
``server`` extra: ``pip install -e ".[server]" && provmark serve --demo``.

The suite itself runs with every extra installed, so a module that the demo or the
server imports but the ``server`` extra does not pull in would go unnoticed without
this (it happened once: soft binding needs numpy).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
from server_harness import free_port

ROOT = Path(__file__).resolve().parents[2]


FORMATS = ("prov-json", "prov-n", "prov-o", "prov-jsonld", "in-toto", "openlineage")


def test_server_extra_alone_runs_the_demo(tmp_path: Path) -> None:
    """The README's install alone: the demo, every export button of the UI and every
    format of `provmark export`; the demo's temporary folder is gone after SIGTERM."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    done = subprocess.run(
        [*pip, "-e", f"{ROOT}[server]"], capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVMARK_")}
    env.pop("PYTHONPATH", None)  # only what the venv installed
    env["HOME"] = str(tmp_path)  # the demo folder and keys go here, not to the real home
    env["TMPDIR"] = str(tmp_path / "tmp")  # where `serve --demo` makes its folder
    (tmp_path / "tmp").mkdir()
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
            base = f"http://127.0.0.1:{port}"
            page = httpx.get(base + "/", timeout=10)
            assert page.status_code == 200
            text = log.read_text()
            found = re.search(r"auditor \(sees everything\):\s+(\S+)", text)
            assert found, text  # the tokens to sign in with are printed
            demo = Path(re.search(r"capturing demo records into (\S+)/provmark.db", text)[1])
            assert demo.parent == tmp_path / "tmp"
            headers = {"authorization": f"Bearer {found[1]}"}
            records = httpx.get(base + "/v1/records", params={"limit": 3}, headers=headers)
            record_id = records.json()["records"][0]["record_id"]
            for fmt in FORMATS:  # every export button of a record page
                got = httpx.get(
                    f"{base}/v1/ui/records/{record_id}/export/{fmt}", headers=headers, timeout=30
                )
                assert got.status_code == 200, (fmt, got.text[:500])
                assert got.content
            db = ["--db", str(demo / "provmark.db"), "--home", str(demo / "home")]
            for fmt in FORMATS:  # and every format of the CLI
                # the demo has a failed generation: no output, so no in-toto subject
                skip = ["--skip-failed"] if fmt == "in-toto" else []
                exported = subprocess.run(
                    [str(venv / "bin" / "provmark"), "export", "--format", fmt, *skip, *db],
                    capture_output=True,
                    env=env,
                    timeout=120,
                )
                assert exported.returncode == 0, (fmt, exported.stderr[-2000:])
                assert exported.stdout, fmt
        finally:
            proc.terminate()
            proc.wait(30)
    assert not demo.exists(), "serve --demo left its temporary folder behind"
