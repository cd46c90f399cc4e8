"""The C2SP tlog-witness HTTP protocol: ``POST <prefix>/add-checkpoint``, both sides.

Request body: ``old <size>\\n``, up to 63 base64 consistency-proof lines, an empty
line, then the signed checkpoint note. Success (200) is one or more cosignature
lines; 409 carries the witness's latest size as ``text/x.tlog.size``. The server
is the standard library's threaded HTTP/1.1 server (keep-alive), bound to
127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import threading
import urllib.parse
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..errors import ConfigError
from .service import MAX_PROOF_LINES, Witness, WitnessRefusal

__all__ = [
    "MAX_BODY_BYTES",
    "WitnessClient",
    "WitnessServer",
    "encode_add_checkpoint",
    "parse_add_checkpoint",
]

MAX_BODY_BYTES = 1 << 20
SIZE_TYPE = "text/x.tlog.size"


def encode_add_checkpoint(old_size: int, proof: Sequence[bytes], note: str) -> bytes:
    lines = [f"old {old_size}", *(base64.b64encode(p).decode() for p in proof), ""]
    return ("\n".join(lines) + "\n" + note).encode("utf-8")


def parse_add_checkpoint(body: bytes) -> tuple[int, list[bytes], str]:
    """Split a request body; raise :class:`WitnessRefusal` (400) when it is malformed."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WitnessRefusal(400, "request body is not UTF-8") from None
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise WitnessRefusal(400, "no empty line between the proof and the checkpoint")
    lines = head.split("\n")
    first = lines[0]
    size_text = first[4:]
    if (
        not first.startswith("old ")
        or not size_text.isascii()
        or not size_text.isdigit()
        or size_text != str(int(size_text))
    ):
        raise WitnessRefusal(400, f"first line {first[:40]!r} is not 'old <decimal size>'")
    proof_lines = lines[1:]
    if len(proof_lines) > MAX_PROOF_LINES:
        raise WitnessRefusal(400, f"{len(proof_lines)} proof lines, at most {MAX_PROOF_LINES}")
    proof: list[bytes] = []
    for n, line in enumerate(proof_lines, 1):
        try:
            raw = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError):
            raise WitnessRefusal(400, f"proof line {n} is not base64") from None
        if len(raw) != 32:
            raise WitnessRefusal(400, f"proof line {n} is {len(raw)} bytes, want 32")
        proof.append(raw)
    return int(size_text), proof, note


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet; errors go in replies
        pass

    def _reply(
        self, status: int, body: str, content_type: str = "text/plain; charset=utf-8"
    ) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("", self.server.prefix):
            witness = self.server.witness
            self._reply(200, f"provmark witness {witness.name}\n{witness.key.vkey()}\n")
        else:
            self._reply(404, "not found\n")

    def do_POST(self) -> None:
        if self.path != self.server.prefix + "/add-checkpoint":
            self._reply(404, "not found\n")
            return
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self._reply(411, "Content-Length required\n")
            self.close_connection = True
            return
        if int(length) > MAX_BODY_BYTES:
            self._reply(413, f"request body over {MAX_BODY_BYTES} bytes\n")
            self.close_connection = True
            return
        body = self.rfile.read(int(length))
        try:
            old_size, proof, note = parse_add_checkpoint(body)
            lines = self.server.witness.add_checkpoint(old_size, proof, note)
        except WitnessRefusal as refusal:
            if refusal.status == 409 and refusal.size is not None:
                self._reply(409, f"{refusal.size}\n", SIZE_TYPE)
            else:
                self._reply(refusal.status, refusal.reason + "\n")
            return
        self._reply(200, lines)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], witness: Witness, prefix: str) -> None:
        self.witness = witness
        self.prefix = prefix
        super().__init__(address, _Handler)


class WitnessServer:
    """Serve a :class:`Witness` over HTTP; ``port=0`` picks a free port."""

    def __init__(
        self, witness: Witness, host: str = "127.0.0.1", port: int = 0, prefix: str = ""
    ) -> None:
        if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
            raise ConfigError(f"{prefix!r}: start with '/', no trailing '/'", field="prefix")
        self.witness = witness
        self._server = _Server((host, port), witness, prefix)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{self._server.prefix}"

    def serve_forever(self) -> None:
        self._server.serve_forever(poll_interval=0.2)

    def start(self) -> WitnessServer:
        """Serve on a background thread (library use and tests)."""
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def __enter__(self) -> WitnessServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class WitnessClient:
    """The log side of ``add-checkpoint``, over one keep-alive connection."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"witness URL {url!r}: want http(s)://host[:port][/prefix]")
        self.url = url
        self._parts = parts
        self._timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = (
                http.client.HTTPSConnection
                if self._parts.scheme == "https"
                else http.client.HTTPConnection
            )
            self._conn = cls(self._parts.hostname or "", self._parts.port, timeout=self._timeout)
        return self._conn

    def add_checkpoint(self, old_size: int, proof: Sequence[bytes], note: str) -> str:
        """Return the witness's cosignature lines or raise :class:`WitnessRefusal`."""
        body = encode_add_checkpoint(old_size, proof, note)
        path = self._parts.path.rstrip("/") + "/add-checkpoint"
        for attempt in (1, 2):  # a kept-alive connection the server closed: retry once
            conn = self._connection()
            try:
                conn.request("POST", path, body=body, headers={"Content-Type": "text/plain"})
                resp = conn.getresponse()
                text = resp.read().decode("utf-8", "replace")
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if attempt == 2:
                    raise
        if resp.status == 200:
            return text
        if resp.status == 409 and resp.getheader("Content-Type", "").startswith(SIZE_TYPE):
            size_text = text.strip()
            if not size_text.isdigit():
                raise WitnessRefusal(502, f"witness sent a bad 409 body {text[:40]!r}")
            raise WitnessRefusal(409, f"witness's latest size is {size_text}", int(size_text))
        raise WitnessRefusal(resp.status, text.strip() or resp.reason)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
