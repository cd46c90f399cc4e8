"""OpenTelemetry with the real opentelemetry-sdk: GenAI spans -> records, record ids on spans."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import provmark
from provmark import CaptureError

pytest.importorskip("opentelemetry.sdk.trace", reason="opentelemetry-sdk is not installable here")
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import Status, StatusCode

from provmark.integrations import otel

INPUT = [{"role": "user", "parts": [{"type": "text", "content": "Name a colour"}]}]
OUTPUT = [
    {
        "role": "assistant",
        "parts": [{"type": "text", "content": "Teal"}, {"type": "text", "content": "."}],
        "finish_reason": "stop",
    }
]


def chat_attributes(**more: Any) -> dict[str, Any]:
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-x",
        "gen_ai.request.temperature": 0.3,
        "gen_ai.request.top_p": 0.95,
        "gen_ai.request.max_tokens": 50,
        "gen_ai.request.seed": 5,
        "gen_ai.request.stop_sequences": ("\n\n",),
        "gen_ai.response.model": "gpt-x-2026-01-01",
        "gen_ai.response.id": "chatcmpl-1",
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 2,
        **more,
    }


@pytest.fixture
def traced(pm: provmark.Provmark) -> Iterator[tuple[Any, InMemorySpanExporter, Any]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    processor = otel.span_processor(pm)
    provider.add_span_processor(processor)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("test"), exporter, processor
    provider.shutdown()


def test_genai_span_becomes_a_verifiable_record(pm: Any, traced: Any) -> None:
    tracer, exporter, processor = traced
    with tracer.start_as_current_span("chat gpt-x") as span:
        span.set_attributes(chat_attributes(**{"enduser.id": "alice"}))
        span.set_attribute("gen_ai.input.messages", json.dumps(INPUT))
        span.add_event(
            "gen_ai.client.inference.operation.details",
            {"gen_ai.output.messages": json.dumps(OUTPUT)},
        )
    r = pm.verify("Teal.").record
    (exported,) = exporter.get_finished_spans()
    assert r.operation == "chat" and r.status == "ok"
    assert (r.model.name, r.model.provider) == ("gpt-x", "openai")
    assert r.params == {
        "temperature": 0.3,
        "top_p": 0.95,
        "max_tokens": 50,
        "seed": 5,
        "stop": ["\n\n"],
    }
    assert r.input.seed == "5" and "Name a colour" in (r.input.snapshot or "")
    assert r.usage.input_tokens == 12 and r.usage.output_tokens == 2
    assert r.extra["trace_id"] == f"{exported.context.trace_id:032x}"
    assert r.extra["response_id"] == "chatcmpl-1" and r.extra["output_source"] == "span_content"
    assert r.fallback is None, "a pinned snapshot of the requested model is not a fallback"
    assert r.actor.user_id == "alice"
    assert r.started_at is not None and processor.recorded == 1


def test_span_without_content_other_model_and_errors(pm: Any, traced: Any) -> None:
    tracer, _, _ = traced
    with tracer.start_as_current_span("chat router") as span:
        span.set_attributes(
            chat_attributes(**{"gen_ai.request.model": "router", "gen_ai.response.id": "r-2"})
        )
    with tracer.start_as_current_span("chat gpt-x") as span:
        span.set_attributes(chat_attributes(**{"error.type": "RateLimitError"}))
        span.set_status(Status(StatusCode.ERROR, "429 too many requests"))
    with tracer.start_as_current_span("GET /health"):
        pass
    with tracer.start_as_current_span("execute_tool lookup") as span:
        span.set_attribute("gen_ai.operation.name", "execute_tool")
    pm.flush()
    records = pm.find(limit=10).records
    assert len(records) == 2
    failed = next(r for r in records if r.status == "error")
    assert failed.error.type == "RateLimitError" and "429" in (failed.error.message or "")
    routed = next(r for r in records if r.status == "ok")
    assert routed.extra["output_source"] == "span_reference"
    assert routed.output.media_type == otel.SPAN_REF_MEDIA_TYPE
    ref = {k: routed.extra[k] for k in ("trace_id", "span_id", "response_id")}
    assert (
        routed.output.sha256 == hashlib.sha256(provmark.canonical.canonical_bytes(ref)).hexdigest()
    )
    assert (routed.fallback.requested_model, routed.fallback.served_model) == (
        "router",
        "gpt-x-2026-01-01",
    )


def test_record_ids_go_on_the_current_span_and_are_not_recorded_twice(pm: Any, traced: Any) -> None:
    tracer, exporter, _ = traced
    link = otel.link_spans(pm)
    with tracer.start_as_current_span("chat gpt-x") as span:
        span.set_attributes(chat_attributes())
        with pm.record(model="gpt-x", input="hi") as rec:
            rec.set_output("wrapped by provmark")
    otel.unlink_spans(pm, link)
    (exported,) = exporter.get_finished_spans()
    assert exported.attributes[otel.RECORD_ID_ATTRIBUTE] == rec.record_id
    assert [e.name for e in exported.events] == ["provmark.record"]
    pm.flush()
    assert len(pm.find(limit=10).records) == 1, "the span processor skipped the linked span"
    with tracer.start_as_current_span("plain") as span, pm.record(model="m", input="x") as rec2:
        rec2.set_output("after unlink")
    assert otel.RECORD_ID_ATTRIBUTE not in exporter.get_finished_spans()[-1].attributes


def test_unrecordable_span_follows_the_capture_policy(db_path: Path, home: Path) -> None:
    too_big = tuple("x" * 100 for _ in range(400))  # params over the 16 KiB limit
    for policy in ("strict", "best_effort"):
        with provmark.open(db_path, home=home, policy=policy) as pm:
            provider = TracerProvider()
            provider.add_span_processor(otel.span_processor(pm))
            tracer = provider.get_tracer("test")
            span = tracer.start_span("chat big")
            span.set_attributes(chat_attributes(**{"gen_ai.request.stop_sequences": too_big}))
            if policy == "strict":
                with pytest.raises(CaptureError, match="params"):
                    span.end()
            else:
                span.end()
            assert pm.capture_failures == 1


def test_missing_sdk_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['opentelemetry.sdk'] = None\n"
        "from provmark.integrations import otel\n"
        "try:\n    otel.span_processor(None)\n"
        "except Exception as e:\n    print(type(e).__name__, e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("ConfigError") and "pip install 'provmark[otel]'" in out.stdout
