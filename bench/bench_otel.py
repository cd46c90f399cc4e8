"""OpenTelemetry both ways: the cost per call of turning spans into records, and the rate
at which records go out as OTLP spans and log events.

python bench/bench_otel.py [--n 2000] [--records 20000]

Per call (caller's thread, interleaved with the same span on a tracer without provmark,
so load from other work hits both alike): a GenAI span named at its start (it gets
``provmark.record_id`` at once), one named late, and an OpenInference span. Signing and
storing happen on provmark's writer thread, as in production.

Export: ``RecordExporter`` with the official OTLP/HTTP exporter (protobuf) sending the
stored records to a receiver on 127.0.0.1 that reads each request whole and answers 200
(a collector's work is not measured), in batches of 512; and ``to_span``/``to_log`` alone.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import provmark
from common import percentiles, save, table

OUTPUT = json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "ok " * 40}]}])
GENAI = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-x",
    "gen_ai.request.temperature": 0.2,
    "gen_ai.response.id": "r-1",
    "gen_ai.usage.input_tokens": 20,
    "gen_ai.usage.output_tokens": 40,
}
OPENINFERENCE = {
    "openinference.span.kind": "LLM",
    "llm.model_name": "gpt-x",
    "llm.provider": "openai",
    "llm.invocation_parameters": json.dumps({"temperature": 0.2}),
    "llm.input_messages.0.message.role": "user",
    "llm.input_messages.0.message.content": "Say ok",
    "llm.output_messages.0.message.role": "assistant",
    "llm.output_messages.0.message.content": "ok " * 40,
    "llm.token_count.prompt": 20,
    "llm.token_count.completion": 40,
}


def interleaved(
    name: str, bare: Callable[[], Any], wrapped: Callable[[], Any], n: int
) -> dict[str, Any]:
    for _ in range(max(20, n // 20)):
        bare()
        wrapped()
    a, b = [], []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        bare()
        t1 = time.perf_counter_ns()
        wrapped()
        t2 = time.perf_counter_ns()
        a.append(t1 - t0)
        b.append(t2 - t1)
    pa, pb = percentiles(a), percentiles(b)
    return {
        "case": name,
        "calls": n,
        "bare_p50_us": pa["p50_us"],
        "with_p50_us": pb["p50_us"],
        "overhead_p50_us": pb["p50_us"] - pa["p50_us"],
        "overhead_p99_us": pb["p99_us"] - pa["p99_us"],
    }


def span_cases(pm: provmark.Provmark) -> dict[str, tuple[Callable[[], Any], Callable[[], Any]]]:
    from opentelemetry.sdk.trace import TracerProvider

    from provmark.integrations import otel

    plain = TracerProvider().get_tracer("bench")
    provider = TracerProvider()
    provider.add_span_processor(otel.span_processor(pm))
    traced = provider.get_tracer("bench")

    def at_start(tracer: Any) -> Callable[[], None]:
        def run() -> None:
            with tracer.start_as_current_span("chat gpt-x", attributes=GENAI) as span:
                span.set_attribute("gen_ai.output.messages", OUTPUT)

        return run

    def late(tracer: Any) -> Callable[[], None]:
        def run() -> None:
            with tracer.start_as_current_span("chat gpt-x") as span:
                span.set_attributes({**GENAI, "gen_ai.output.messages": OUTPUT})

        return run

    def openinference(tracer: Any) -> Callable[[], None]:
        def run() -> None:
            with tracer.start_as_current_span("ChatCompletion", attributes=OPENINFERENCE):
                pass

        return run

    return {
        "GenAI span named at start -> record (+ record id on the span)": (
            at_start(plain),
            at_start(traced),
        ),
        "GenAI span named late -> record": (late(plain), late(traced)),
        "OpenInference LLM span -> record": (openinference(plain), openinference(traced)),
    }


class Sink:
    """Reads each OTLP request whole and answers 200: the network and HTTP, no collector."""

    def __init__(self) -> None:
        self.requests = 0
        self.bytes = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                sink.requests += 1
                sink.bytes += len(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def export_rows(pm: provmark.Provmark, records: int) -> list[dict[str, Any]]:
    from opentelemetry.sdk.resources import Resource

    from provmark.integrations import otel_export

    for i in range(records):
        with pm.record(model="acme/chat", input=f"q{i}", params={"temperature": 0.2}) as rec:
            rec.set_output(f"answer {i} " + "ok " * 40)
            rec.set_usage(input_tokens=20, output_tokens=40)
    pm.flush()
    stored = list(pm.store.iter_records())
    rows = []
    resource = Resource.create({"service.name": "bench"})
    for signal, convert in (("spans", otel_export.to_span), ("logs", otel_export.to_log)):
        samples = []
        for item in stored[:2000]:
            t0 = time.perf_counter_ns()
            convert(item, resource)
            samples.append(time.perf_counter_ns() - t0)
        p = percentiles(samples)
        rows.append(
            {
                "what": f"to_{signal[:-1]} (one record)",
                "records": len(samples),
                "records_per_s": len(samples) / (sum(samples) / 1e9),
                "p50_us": p["p50_us"],
                "p99_us": p["p99_us"],
            }
        )
    for signal in ("spans", "logs"):
        sink = Sink()
        try:
            exporter = otel_export.RecordExporter(sink.url, signal=signal, batch_size=512)
            batches: list[int] = []
            t0 = time.perf_counter()
            for start in range(0, len(stored), 512):
                b0 = time.perf_counter_ns()
                exporter.export_batch(list(stored[start : start + 512]))
                batches.append(time.perf_counter_ns() - b0)
            elapsed = time.perf_counter() - t0
            exporter.shutdown()
        finally:
            sink.close()
        p = percentiles(batches)
        rows.append(
            {
                "what": f"OTLP/HTTP {signal}, batches of 512",
                "records": len(stored),
                "records_per_s": len(stored) / elapsed,
                "p50_us": p["p50_us"],
                "p99_us": p["p99_us"],
                "bytes_per_record": sink.bytes / len(stored),
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="calls per span case")
    ap.add_argument("--records", type=int, default=20000, help="records to export")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        with provmark.open(Path(d) / "spans.db", home=d, max_queue=200_000, batch_size=2048) as pm:
            calls = [
                interleaved(name, bare, wrapped, args.n)
                for name, (bare, wrapped) in span_cases(pm).items()
            ]
            pm.flush()
            failures = pm.stats()["capture_failures"]
        with provmark.open(Path(d) / "export.db", home=d, batch_size=2048) as pm:
            exports = export_rows(pm, args.records)
    print(table("Spans -> records: per-call overhead on the caller's thread (us)", calls))
    print()
    print(
        table(
            "Records -> OTLP (per batch latency for exports, per record for conversions)", exports
        )
    )
    if failures:
        print(f"capture failures: {failures}")
    path = save("otel", {"span_to_record": calls, "record_to_otlp": exports, "failures": failures})
    print(f"\nresults: {path}")


if __name__ == "__main__":
    main()
