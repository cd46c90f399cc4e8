"""Demo data and a real server process (API + web UI) on 127.0.0.1 for the UI tests.

The store is what a small deployment looks like after an hour: records of three
services captured over the last 90 minutes (in several batches, so the log has
several checkpoints, some of them failed generations), the Markov demo of
``provmark.cli.demo.build_demo``, a chain of records that name their parents, and a
PNG with a C2PA manifest. The records of the last 90 minutes are signed with an
imported key (creation time unknown, so valid from the epoch), which is how their
back-dated ``generated_at`` still passes the key-window check.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

import provmark
from provmark.cli.demo import build_demo
from provmark.crypto.keys import generate_private_key
from provmark.crypto.keystore import _pem
from provmark.record import format_time, new_record_id, now_utc
from provmark.server.auth import TokenStore
from provmark.server.state import StateDB

HERE = Path(__file__).resolve().parent
# docs/img/ is written by `make screenshots` from the README's demo; the tests render the
# same pages and keep their screenshots only when PROVMARK_SCREENSHOTS names a folder
SCREENSHOTS = os.environ.get("PROVMARK_SCREENSHOTS")
PII = ("jane.doe@example.com", "alice@example.com", "+44 20 7946 0958")

SERVICES = (
    ("acme/summarizer", "3.2", "chat", "summaries"),
    ("acme/classifier", "1.4", "classification", "risk-triage"),
    ("acme/painter", "2.0", "image_generation", "marketing"),
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def png(width: int = 16, height: int = 16, seed: int = 7) -> bytes:
    """A small truecolour PNG, pure Python."""
    rng = random.Random(seed)
    rows = b"".join(
        b"\x00" + bytes(rng.randrange(256) for _ in range(width * 3)) for _ in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def import_key(home: Path) -> None:
    """A record-signing key of unknown creation time (published as valid from the epoch)."""
    keys = home / "keys"
    keys.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = keys / "records.pem"
    path.write_bytes(_pem(generate_private_key()))
    os.chmod(path, 0o600)


def history(now: datetime, n: int = 360, seed: int = 1) -> list[list[dict[str, Any]]]:
    """``n`` records over the last 90 minutes in time order, cut into batches."""
    rng = random.Random(seed)
    times = sorted(now - timedelta(seconds=rng.uniform(60, 90 * 60)) for _ in range(n))
    records = []
    for i, t in enumerate(times):
        name, version, operation, service = SERVICES[rng.choices((0, 1, 2), (6, 3, 1))[0]]
        failed = rng.random() < 0.04
        output = f"{name} output {i} {rng.random()}".encode()
        record: dict[str, Any] = {
            "record_id": new_record_id(int(t.timestamp() * 1e9)),
            "generated_at": format_time(t),
            "operation": operation,
            "model": {"name": name, "version": version, "provider": "acme"},
            "input": {
                "sha256": hashlib.sha256(f"prompt {i}".encode()).hexdigest(),
                "snapshot": f"Request {i} from jane.doe@example.com",
            },
            "params": {"temperature": round(rng.uniform(0, 1), 2)},
            "actor": {"user_id": "jane.doe@example.com", "service": service},
            "tags": {"team": rng.choice(("risk", "growth", "support"))},
            "usage": {"latency_ms": round(rng.uniform(40, 900), 1)},
        }
        if failed:
            record["status"] = "error"
            record["error"] = {
                "type": "TimeoutError",
                "message": "upstream timed out for jane.doe@example.com",
            }
        else:
            record["output"] = {
                "sha256": hashlib.sha256(output).hexdigest(),
                "size": len(output),
                "media_type": "image/png" if operation == "image_generation" else "text/plain",
            }
        records.append(record)
    size = max(1, n // 8)
    return [records[i : i + size] for i in range(0, n, size)]


def build_store(folder: Path) -> dict[str, Any]:
    """The demo store (see the module doc); returns the paths and ids the tests use."""
    home = folder / "home"
    import_key(home)
    with provmark.open(folder / "provmark.db", home=home) as pm:
        for batch in history(datetime.now(UTC)):
            pm.ingest(batch)
            time.sleep(0.4)  # checkpoints a little apart, for the log's chart
    demo = build_demo(folder, 12)  # 12 requests: 25 records of provmark/markov-demo
    with provmark.open(folder / "provmark.db", home=home) as pm:
        # two demo records without parents of their own (retrievals) feed the report
        first, second = (r.record_id for r in pm.find(operation="retrieval", limit=2).records)
        artifact = "sha256:" + hashlib.sha256(b"board-pack.pdf").hexdigest()

        def derived(parents: list[str], text: str, operation: str) -> str:
            (rid,) = pm.ingest(
                [
                    {
                        "record_id": new_record_id(),
                        "generated_at": now_utc(),
                        "operation": operation,
                        "model": {"name": "acme/summarizer", "version": "3.2", "provider": "acme"},
                        "input": {"snapshot": "Combine the two summaries for the board"},
                        "actor": {"user_id": "alice@example.com", "service": "board-pack"},
                        "output": {
                            "sha256": hashlib.sha256(text.encode()).hexdigest(),
                            "size": len(text),
                            "media_type": "text/plain",
                        },
                        "parents": parents,
                        "tags": {"app": "board-pack"},
                    }
                ]
            )
            return str(rid)

        report = derived([first, second, artifact], "The board report.", "summarization")
        translation = derived([report], "Le rapport du conseil.", "translation")
        review = derived([translation], "Reviewed translation.", "review")
        image = png()
        (image_id,) = pm.ingest(
            [
                {
                    "record_id": new_record_id(),
                    "generated_at": now_utc(),
                    "operation": "image_generation",
                    "model": {"name": "acme/painter", "version": "2.0", "provider": "acme"},
                    "actor": {"service": "marketing"},
                    "output": {
                        "sha256": hashlib.sha256(image).hexdigest(),
                        "size": len(image),
                        "media_type": "image/png",
                    },
                }
            ]
        )
        marked = mark_image(pm, folder, image, str(image_id))
    return {
        **demo,
        "home": home,
        "db": folder / "provmark.db",
        "parents": [first, second, artifact],
        "report": report,
        "translation": translation,
        "review": review,
        "image": image_id,
        "marked": marked,
    }


def mark_image(pm: provmark.Provmark, folder: Path, image: bytes, record_id: str) -> Path | None:
    """The PNG with a C2PA manifest for its record, or None without c2pa-python."""
    try:
        from provmark.export.c2pa import mark
        from provmark.export.c2pa_certs import make_dev_cert
    except ImportError:
        return None
    cert = make_dev_cert()
    src, out = folder / "painting.png", folder / "painting-marked.png"
    src.write_bytes(image)
    stored = pm.store.get(record_id)
    assert stored is not None
    mark(src, out, stored, cert.chain_pem, cert.key_pem)
    return out


def make_token(state: Path, role: str, name: str = "") -> str:
    db = StateDB(str(state))
    try:
        return TokenStore(db).create(role, name or f"e2e-{role}")[0]
    finally:
        db.close()


@dataclass
class UIServer:
    """``provmark.server.create_app`` + ``provmark.web.mount`` under uvicorn, in a process."""

    folder: Path
    db: Path
    home: Path
    auth: bool = True
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def state(self) -> Path:
        return self.folder / "server.db"

    @property
    def log(self) -> Path:
        return self.folder / "ui-server.log"

    def start(self, timeout: float = 30.0) -> UIServer:
        cmd = [
            sys.executable,
            str(HERE / "ui_server.py"),
            "--db",
            str(self.db),
            "--home",
            str(self.home),
            "--state",
            str(self.state),
            "--port",
            str(self.port),
            *([] if self.auth else ["--no-auth"]),
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PROVMARK_")}
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"UI server exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"UI server not ready in {timeout}s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def token(self, role: str) -> str:
        return make_token(self.state, role)

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def sign_in(page: Any, token: str, reason: str = "") -> None:
    """Sign in through the form and wait for the dashboard."""
    page.goto("/")
    page.get_by_label("API token").fill(token)
    if reason:
        page.get_by_label("Reason for access").fill(reason)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("#nav:not([hidden])")
    page.wait_for_selector("main h1")


def screenshot(page: Any, name: str, folder: str | Path | None = SCREENSHOTS) -> bytes:
    """A full-page screenshot (the pointer parked out of the way), saved as ``folder/name``
    when a folder is given."""
    page.mouse.move(0, 0)
    page.wait_for_timeout(150)
    if folder is None:
        return bytes(page.screenshot(full_page=True))
    Path(folder).mkdir(parents=True, exist_ok=True)
    return bytes(page.screenshot(path=str(Path(folder) / name), full_page=True))


def change_one_pixel(data: bytes) -> bytes:
    """The same PNG (any manifest chunk kept) with one pixel value changed."""
    out, i = [data[:8]], 8
    while i < len(data):
        (n,) = struct.unpack(">I", data[i : i + 4])
        kind, body = data[i + 4 : i + 8], data[i + 8 : i + 8 + n]
        if kind == b"IDAT":
            rows = bytearray(zlib.decompress(body))
            rows[5] ^= 0x01
            body = zlib.compress(bytes(rows), 9)
        out.append(
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )
        i += 12 + n
    return b"".join(out)
