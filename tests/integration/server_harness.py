"""A real ``provmark serve`` process on 127.0.0.1 for the server tests (no mocks)."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from provmark.record import new_record_id, now_utc
from provmark.server.auth import TokenStore
from provmark.server.state import StateDB


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """One server process; ``start``/``stop`` keep the same port, files and options."""

    folder: Path
    db: str
    args: list[str] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    state_target: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def home(self) -> Path:
        return self.folder / "home"

    @property
    def state(self) -> str:
        return self.state_target or str(self.folder / "server.db")

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    def start(self, timeout: float = 30.0) -> Server:
        cmd = [
            sys.executable,
            "-m",
            "provmark.cli",
            "serve",
            "--db",
            self.db,
            "--home",
            str(self.home),
            "--state",
            self.state,
            "--port",
            str(self.port),
            "--log-level",
            "warning",
            *self.args,
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PROVMARK_")}
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"server exited {self.proc.returncode}:\n{self.log.read_text()[-3000:]}"
                )
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop(kill=True)
        raise RuntimeError(f"server not ready in {timeout}s:\n{self.log.read_text()[-3000:]}")

    def stop(self, *, kill: bool = False) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def token(self, role: str, name: str = "") -> str:
        db = StateDB(self.state)
        try:
            return TokenStore(db).create(role, name or f"test-{role}")[0]
        finally:
            db.close()

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def start_server(
    folder: Path, *args: str, db: str | None = None, state: str | None = None
) -> Server:
    folder.mkdir(parents=True, exist_ok=True)
    db = db or str(folder / "provmark.db")
    return Server(folder=folder, db=db, args=list(args), state_target=state).start()


def make_record(text: str, **overrides: Any) -> dict[str, Any]:
    """An unsigned record as a service would POST it, for output ``text``."""
    data = text.encode()
    record: dict[str, Any] = {
        "record_id": new_record_id(),
        "schema_version": "1",
        "generated_at": now_utc(),
        "operation": "chat",
        "model": {"name": "acme/summarizer", "version": "3.2"},
        "input": {
            "sha256": hashlib.sha256(b"prompt").hexdigest(),
            "snapshot": "Summarize for jane.doe@example.com",
        },
        "actor": {"user_id": "jane.doe@example.com", "service": "summaries"},
        "output": {
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
            "media_type": "text/plain",
        },
        "tags": {"suite": "server"},
    }
    record.update(overrides)
    return record
