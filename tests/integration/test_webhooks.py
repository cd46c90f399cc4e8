"""Webhooks from a real server process to a real receiver in this test (127.0.0.1).

The receiver checks every Standard Webhooks signature itself (and with the
``standardwebhooks`` reference library when it is installed).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_harness import Server, make_record, start_server

try:
    from standardwebhooks import Webhook as ReferenceWebhook
except ImportError:  # pragma: no cover - the reference check is extra
    ReferenceWebhook = None


@dataclass
class Receiver:
    """Paths: /ok/<name> answers 200, /fail/<name> 500 until ``healed``, /flaky/<name>
    500 twice then 200, /stuck/<name> hangs until the test ends."""

    secrets: dict[str, str] = field(default_factory=dict)
    got: list[dict[str, Any]] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)
    healed: set[str] = field(default_factory=set)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            self.calls[path] = self.calls.get(path, 0) + 1
            n = self.calls[path]
        kind = path.split("/")[1]
        if kind == "stuck":
            self.release.wait(60)
            return 200
        secret = self.secrets[path]
        assert_signed(secret, headers, body)
        with self.lock:
            self.got.append({"path": path, "headers": headers, "body": json.loads(body), "n": n})
        if kind == "fail" and path not in self.healed:
            return 500
        if kind == "flaky" and n <= 2:
            return 503
        return 200

    def events(self, path: str, kind: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [
                g
                for g in self.got
                if g["path"] == path and (kind is None or g["body"]["type"] == kind)
            ]


def assert_signed(secret: str, headers: dict[str, str], body: bytes) -> None:
    """Standard Webhooks: v1,base64(HMAC-SHA256(key, id.timestamp.body)), key after whsec_."""
    msg_id, ts, sig = (
        headers["webhook-id"],
        headers["webhook-timestamp"],
        headers["webhook-signature"],
    )
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = base64.b64encode(
        hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    )
    assert sig == "v1," + expected.decode(), "bad webhook signature"
    assert abs(time.time() - int(ts)) < 300
    if ReferenceWebhook is not None:
        ReferenceWebhook(secret).verify(body, headers)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            try:
                status = rec.handle(
                    self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
            except AssertionError:
                status = 400
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    rec.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield rec
    rec.release.set()
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[Server]:
    srv = start_server(
        tmp_path_factory.mktemp("hooks"),
        "--webhook-attempts", "3", "--webhook-backoff", "0.2", "--webhook-poll", "0.1",
        "--webhook-timeout", "30",
    )  # fmt: skip
    yield srv
    receiver.release.set()
    srv.stop()


@pytest.fixture(scope="module")
def admin(server: Server) -> Iterator[httpx.Client]:
    with server.client(server.token("admin")) as c:
        yield c


@pytest.fixture(scope="module")
def ingest(server: Server) -> Iterator[httpx.Client]:
    with server.client(server.token("ingest")) as c:
        yield c


def subscribe(
    admin: httpx.Client, receiver: Receiver, path: str, events: list[str] | None = None
) -> str:
    body: dict[str, Any] = {"url": receiver.url(path), "description": path}
    if events:
        body["events"] = events
    r = admin.post("/v1/webhooks", json=body)
    assert r.status_code == 201, r.text
    receiver.secrets[path] = r.json()["secret"]
    return str(r.json()["id"])


def wait_for(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def test_signed_events_for_records_checkpoints_and_failed_verifications(
    server: Server, receiver: Receiver, admin: httpx.Client, ingest: httpx.Client
) -> None:
    sub = subscribe(admin, receiver, "/ok/all")
    batch = [make_record(f"hooked {i}") for i in range(5)]
    assert ingest.post("/v1/records", json=batch).status_code == 200
    ids = {r["record_id"] for r in batch}

    def stored() -> set[str]:
        return {
            r["record_id"]
            for e in receiver.events("/ok/all", "record.stored")
            for r in e["body"]["data"]["records"]
        }

    wait_for(lambda: ids <= stored())
    event = receiver.events("/ok/all", "record.stored")[0]["body"]
    record = event["data"]["records"][0]
    assert {"record_id", "slug", "log_index", "model", "output_sha256", "generated_at"} <= set(
        record
    )
    assert "jane.doe@example.com" not in json.dumps(receiver.events("/ok/all"))  # no PII in events
    wait_for(lambda: bool(receiver.events("/ok/all", "checkpoint.signed")))
    cp = receiver.events("/ok/all", "checkpoint.signed")[-1]["body"]["data"]
    assert cp["size"] >= 5 and cp["note"].startswith(cp["origin"] + "\n")
    with server.client(server.token("developer")) as dev:
        assert dev.post("/v1/verify", json={"text": "never made here"}).json()["verified"] is False
    wait_for(lambda: bool(receiver.events("/ok/all", "verification.failed")))
    failed = receiver.events("/ok/all", "verification.failed")[0]["body"]
    assert failed["data"]["check"] == "output_hash" and failed["timestamp"].endswith("Z")
    log = admin.get(f"/v1/webhooks/{sub}/deliveries").json()["deliveries"]
    assert log and all(
        d["status"] == "delivered" and d["attempt_log"][0]["status_code"] == 200 for d in log
    )
    listed = admin.get("/v1/webhooks").json()["webhooks"]
    assert any(w["id"] == sub and w["secret"].endswith("...") for w in listed)  # secret shown once


def test_retries_with_backoff_then_dead_letter_and_manual_retry(
    receiver: Receiver, admin: httpx.Client, ingest: httpx.Client
) -> None:
    flaky = subscribe(admin, receiver, "/flaky/a", ["record.stored"])
    dead = subscribe(admin, receiver, "/fail/a", ["record.stored"])
    assert ingest.post("/v1/records", json=[make_record("retry me")]).status_code == 200

    def status(sub: str) -> list[dict[str, Any]]:
        return list(admin.get(f"/v1/webhooks/{sub}/deliveries").json()["deliveries"])

    wait_for(lambda: any(d["status"] == "delivered" for d in status(flaky)))
    delivered = next(d for d in status(flaky) if d["status"] == "delivered")
    attempts = delivered["attempt_log"]
    assert [a["status_code"] for a in attempts] == [503, 503, 200]
    gaps = [
        time.mktime(time.strptime(b["at"][:19], "%Y-%m-%dT%H:%M:%S"))
        + float(b["at"][19:-1] or 0)
        - time.mktime(time.strptime(a["at"][:19], "%Y-%m-%dT%H:%M:%S"))
        - float(a["at"][19:-1] or 0)
        for a, b in itertools.pairwise(attempts)
    ]
    assert gaps[1] > gaps[0] * 1.3  # exponential backoff: 0.2 s, then 0.4 s
    wait_for(lambda: any(d["status"] == "dead" for d in status(dead)))
    letters = admin.get("/v1/webhooks/dead-letters").json()["dead_letters"]
    letter = next(d for d in letters if d["subscription"] == dead)
    assert letter["attempts"] == 3 and letter["last_error"] == "HTTP 500"
    assert letter["body"]["type"] == "record.stored"
    receiver.healed.add("/fail/a")
    assert admin.post(f"/v1/webhooks/deliveries/{letter['delivery_id']}/retry").status_code == 200
    wait_for(lambda: any(d["status"] == "delivered" for d in status(dead)))
    admin.delete(f"/v1/webhooks/{flaky}")
    admin.delete(f"/v1/webhooks/{dead}")


def test_a_stuck_subscriber_slows_neither_ingest_nor_other_subscribers(
    receiver: Receiver, admin: httpx.Client, ingest: httpx.Client
) -> None:
    def ingest_seconds(n: int) -> float:
        started = time.perf_counter()
        for i in range(n):
            r = ingest.post(
                "/v1/records", json=[make_record(f"timing {i} {time.time()}") for _ in range(20)]
            )
            assert r.status_code == 200
        return time.perf_counter() - started

    baseline = ingest_seconds(10)
    stuck = subscribe(admin, receiver, "/stuck/a", ["record.stored"])
    subscribe(admin, receiver, "/ok/beside-stuck", ["record.stored"])
    with_stuck = ingest_seconds(10)
    wait_for(lambda: receiver.calls.get("/stuck/a", 0) >= 1)
    during = ingest_seconds(10)  # the stuck delivery is holding its connection open now
    assert receiver.calls.get("/stuck/a", 0) == 1  # one in flight per subscriber, not one per event
    assert max(with_stuck, during) < baseline * 3 + 1.0, (baseline, with_stuck, during)
    batch = [make_record("after the stuck one")]
    assert ingest.post("/v1/records", json=batch).status_code == 200
    wait_for(
        lambda: any(
            r["record_id"] == batch[0]["record_id"]
            for e in receiver.events("/ok/beside-stuck")
            for r in e["body"]["data"]["records"]
        )
    )
    admin.delete(f"/v1/webhooks/{stuck}")


def test_webhooks_cli_add_list_remove(server: Server, tmp_path: Path) -> None:
    def cli(*args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "provmark.cli", "webhooks", *args, "--state", server.state],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return out.stdout

    added = cli("add", "https://hooks.example.test/provmark", "--event", "checkpoint.signed")
    secret = added.strip().splitlines()[-1]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 24
    sub_id = added.split()[1]
    listed = json.loads(cli("list", "--json"))["webhooks"]
    assert any(w["id"] == sub_id and w["events"] == ["checkpoint.signed"] for w in listed)
    assert secret not in cli("list")
    cli("remove", sub_id)
    assert sub_id not in cli("list")
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "provmark.cli",
            "webhooks",
            "add",
            "ftp://x",
            "--state",
            server.state,
        ],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "http(s)" in bad.stderr
