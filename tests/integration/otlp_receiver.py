"""An OTLP/HTTP receiver for tests: decodes what real exporters send with the official
protobufs (``opentelemetry-proto``), as a collector's ``otlp`` receiver does.

The opentelemetry-collector(-contrib) binary is not installable from PyPI, npm or
Debian, so tests run this instead; it answers as the OTLP/HTTP specification says
(200 with an empty ``Export*ServiceResponse``, or the status a test asks for).
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

_KINDS: dict[str, tuple[Any, Any]] = {
    "/v1/traces": (ExportTraceServiceRequest, ExportTraceServiceResponse),
    "/v1/logs": (ExportLogsServiceRequest, ExportLogsServiceResponse),
}


def value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind) if kind else None


def attrs(items: Any) -> dict[str, Any]:
    return {kv.key: value(kv.value) for kv in items}


class Receiver:
    """``with Receiver() as r:`` ... ``r.url``, ``r.spans()``, ``r.logs()``; ``r.fail_next``
    makes the next requests answer with that status."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, Any, dict[str, str]]] = []
        self.fail_next: list[int] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                kind = _KINDS.get(self.path)
                if kind is None:
                    self.send_error(404)
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                with receiver.lock:
                    failing = receiver.fail_next.pop(0) if receiver.fail_next else None
                if failing is not None:
                    self.send_response(failing)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.headers.get("Content-Type") != "application/x-protobuf":
                    self.send_error(415)
                    return
                request = kind[0].FromString(body)
                with receiver.lock:
                    receiver.requests.append((self.path, request, dict(self.headers)))
                reply = kind[1]().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _of(self, path: str) -> list[Any]:
        with self.lock:
            return [r for p, r, _ in self.requests if p == path]

    def spans(self) -> Iterator[tuple[dict[str, Any], str, Any]]:
        """(resource attributes, scope name, span) of every span received."""
        for request in self._of("/v1/traces"):
            for rs in request.resource_spans:
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        yield attrs(rs.resource.attributes), ss.scope.name, span

    def logs(self) -> Iterator[tuple[dict[str, Any], str, Any]]:
        for request in self._of("/v1/logs"):
            for rl in request.resource_logs:
                for sl in rl.scope_logs:
                    for record in sl.log_records:
                        yield attrs(rl.resource.attributes), sl.scope.name, record
