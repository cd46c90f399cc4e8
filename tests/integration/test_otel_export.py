"""OpenTelemetry both ways, against a real OTLP/HTTP receiver decoding the real exporters'
protobufs: spans name their records, records go out as OTLP spans and log events
(library, ``provmark export --format otlp`` and the forwarder), OpenInference is read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import provmark

pytest.importorskip("opentelemetry.exporter.otlp.proto.http", reason="otel extra not installed")
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from otlp_receiver import Receiver, attrs

from provmark.crypto.keys import PublicKey
from provmark.integrations import otel, otel_export

CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-x",
    "gen_ai.request.temperature": 0.5,
}
OUTPUT = json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "Blue."}]}])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture
def app_tracing(pm: Any, receiver: Receiver) -> Iterator[Any]:
    """An app traced with the SDK: its spans go to the receiver over real OTLP/HTTP."""
    provider = TracerProvider()
    provider.add_span_processor(otel.span_processor(pm))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{receiver.url}/v1/traces"))
    )
    yield provider.get_tracer("app")
    provider.shutdown()


def test_genai_span_and_its_record_name_each_other(
    pm: Any, app_tracing: Any, receiver: Receiver
) -> None:
    with app_tracing.start_as_current_span("chat gpt-x", attributes=CHAT) as span:
        span.set_attribute("gen_ai.output.messages", OUTPUT)
    record = pm.verify("Blue.").record
    ((_, _, sent),) = list(receiver.spans())
    assert attrs(sent.attributes)["provmark.record_id"] == record.record_id
    assert record.extra["span_id"] == sent.span_id.hex()
    assert record.extra["trace_id"] == sent.trace_id.hex()
    assert record.params == {"temperature": 0.5}


def test_records_made_inside_a_span_point_at_it(
    pm: Any, app_tracing: Any, receiver: Receiver
) -> None:
    link = otel.link_spans(pm)
    try:
        with (
            app_tracing.start_as_current_span("summarise request"),
            pm.record(model="acme/sum", input="text") as rec,
        ):
            rec.set_output("summary")
    finally:
        otel.unlink_spans(pm, link)
    ((_, _, sent),) = list(receiver.spans())
    assert attrs(sent.attributes)["provmark.record_id"] == rec.record_id
    record = pm.verify("summary").record
    assert (record.extra["trace_id"], record.extra["span_id"]) == (
        sent.trace_id.hex(),
        sent.span_id.hex(),
    )


def test_openinference_spans_become_records(pm: Any, app_tracing: Any, receiver: Receiver) -> None:
    oi = {
        "openinference.span.kind": "LLM",
        "llm.model_name": "gpt-4o-mini",
        "llm.provider": "openai",
        "llm.invocation_parameters": json.dumps({"temperature": 0.1, "max_tokens": 9}),
        "llm.input_messages.0.message.role": "user",
        "llm.input_messages.0.message.content": "Sky colour?",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": "Azure",
        "llm.token_count.prompt": 4,
        "llm.token_count.completion": 1,
        "user.id": "bob",
        "session.id": "s-1",
    }
    with app_tracing.start_as_current_span("ChatCompletion", attributes=oi):
        pass
    with app_tracing.start_as_current_span(
        "embed",
        attributes={
            "openinference.span.kind": "EMBEDDING",
            "embedding.model_name": "text-embedding-3-small",
            "embedding.embeddings.0.embedding.text": "hello",
            "embedding.embeddings.0.embedding.vector": (0.25, 0.5),
        },
    ):
        pass
    with app_tracing.start_as_current_span(
        "retrieve", attributes={"openinference.span.kind": "RETRIEVER"}
    ):
        pass
    r = pm.verify("Azure").record
    assert (r.operation, r.model.name, r.model.provider) == ("chat", "gpt-4o-mini", "openai")
    assert r.params == {"temperature": 0.1, "max_tokens": 9}
    assert "Sky colour?" in (r.input.snapshot or "")
    assert (r.usage.input_tokens, r.usage.output_tokens) == (4, 1)
    assert r.actor.user_id == "bob" and r.extra["session_id"] == "s-1"
    e = pm.verify([[0.25, 0.5]]).record
    assert (e.operation, e.model.name) == ("embeddings", "text-embedding-3-small")
    pm.flush()
    assert len(pm.find(limit=10).records) == 2, "a RETRIEVER span is no generation"
    ids = {attrs(s.attributes).get("provmark.record_id") for _, _, s in receiver.spans()}
    assert {r.record_id, e.record_id} <= ids


def _records(pm: Any) -> list[Any]:
    with pm.record(
        model=provmark.Model("acme/chat", provider="acme"),
        input="q1",
        params={"temperature": 0.2, "max_tokens": 5, "stop": ["\n"]},
    ) as a:
        a.set_output("first answer")
        a.set_usage(input_tokens=3, output_tokens=2)
    with pm.record(model="acme/chat", input="q2") as b:
        b.add_parent(a.record_id)
        b.set_output("second answer")
    with pytest.raises(TimeoutError), pm.record(model="acme/chat", input="q3"):
        raise TimeoutError("model timed out")
    pm.flush()
    return [s for s in pm.store.iter_records()]


def test_records_export_as_otlp_spans(pm: Any, receiver: Receiver) -> None:
    stored = _records(pm)
    with otel_export.RecordExporter(receiver.url, service_name="acme-api") as exporter:
        assert exporter.export(stored) == 3
    spans = {
        attrs(s.attributes)["provmark.record_id"]: (res, scope, s)
        for res, scope, s in receiver.spans()
    }
    first, second, failed = (pm.get(s.record_id) for s in stored)
    res, scope, span = spans[first.record_id]
    assert res["service.name"] == "acme-api" and scope == "provmark"
    a = attrs(span.attributes)
    assert a["gen_ai.operation.name"] == "text_completion"
    assert (a["gen_ai.request.model"], a["gen_ai.provider.name"]) == ("acme/chat", "acme")
    assert a["gen_ai.request.temperature"] == 0.2 and a["gen_ai.request.max_tokens"] == 5
    assert a["gen_ai.request.stop_sequences"] == ["\n"]
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (3, 2)
    assert a["provmark.output.sha256"] == first.output.sha256
    assert a["provmark.log.index"] == 0 and a["provmark.signature.key_id"] == first.signature.key_id
    assert span.trace_id.hex() == first.record_id.replace("-", ""), "own trace: the record id"
    assert span.start_time_unix_nano <= span.end_time_unix_nano
    assert span.name == "text_completion acme/chat"
    _, _, child = spans[second.record_id]
    assert [link.span_id for link in child.links] == [span.span_id]
    _, _, bad = spans[failed.record_id]
    assert bad.status.code == 2 and "TimeoutError" in bad.status.message
    assert attrs(bad.attributes)["error.type"] == "TimeoutError"
    # records as pm.get/pm.find give them (also from a remote client) export alike
    otel_export.RecordExporter(receiver.url).export([pm.get(first.record_id)])
    same = [s for _, _, s in receiver.spans()][-1]
    assert attrs(same.attributes) == a and same.span_id == span.span_id
    # exporting again gives the same ids (a collector can deduplicate)
    otel_export.RecordExporter(receiver.url).export(stored[:1])
    again = [s for _, _, s in receiver.spans()][-1]
    assert (again.trace_id, again.span_id) == (span.trace_id, span.span_id)


def test_records_export_as_log_events_that_still_verify(pm: Any, receiver: Receiver) -> None:
    stored = _records(pm)
    otel_export.RecordExporter(receiver.url, signal="logs").export(stored)
    logs = list(receiver.logs())
    assert len(logs) == 3
    keys = {k.key_id: k for k in pm.public_keys()}
    for (_, scope, log), s in zip(logs, stored, strict=True):
        a = attrs(log.attributes)
        assert log.event_name == "provmark.record" and scope == "provmark"
        body = log.body.string_value.encode()
        assert body == s.payload, "the body is the exact signed bytes"
        key: PublicKey = keys[a["provmark.signature.key_id"]]
        from provmark.crypto.keys import verify_record_signature

        verify_record_signature(key, body, a["provmark.signature.sig"])
        assert log.trace_id.hex() == s.record_id.replace("-", "")
    assert logs[2][2].severity_text == "ERROR"


def test_export_cli_and_forwarder_lose_nothing(
    pm: Any, receiver: Receiver, db_path: Path, home: Path
) -> None:
    stored = _records(pm)
    env = {**os.environ, "PROVMARK_HOME": str(home)}
    run = [sys.executable, "-m", "provmark.cli", "export", "--db", str(db_path), "--format", "otlp"]
    out = subprocess.run(
        [*run, "--endpoint", receiver.url, "--status", "ok"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "sent 2 records as OTLP spans" in out.stdout
    assert len(list(receiver.spans())) == 2

    cursor = db_path.parent / "otlp.cursor"
    receiver.fail_next = [400]  # refused: the cursor must not move
    out = subprocess.run(
        [*run, "--endpoint", receiver.url, "--signal", "logs", "--cursor", str(cursor)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and "did not take 3 logs" in out.stderr
    assert not cursor.exists() and not list(receiver.logs())
    forwarder = otel_export.Forwarder(
        pm.store,
        otel_export.RecordExporter(receiver.url, signal="logs", batch_size=2),
        cursor=cursor,
    )
    assert forwarder.run_once() == 3 and cursor.read_text() == "3\n"
    with pm.record(model="acme/chat", input="q4") as rec:
        rec.set_output("fourth")
    pm.flush()
    assert forwarder.run_once() == 1 and forwarder.run_once() == 0
    sent = [attrs(log.attributes)["provmark.record_id"] for _, _, log in receiver.logs()]
    assert sent == [*(s.record_id for s in stored), rec.record_id]
    out = subprocess.run(
        [*run, "--endpoint", receiver.url, "--signal", "logs", "--cursor", str(cursor)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0 and "sent 0 records" in out.stdout


def test_bad_endpoint_and_signal_are_clear_errors(pm: Any) -> None:
    with pytest.raises(provmark.ConfigError, match="http"):
        otel_export.RecordExporter("collector:4318")
    with pytest.raises(provmark.ConfigError, match="signal"):
        otel_export.RecordExporter("http://127.0.0.1:1", signal="metrics")


def test_a_wrapper_inside_a_span_named_at_start_makes_the_only_record(
    pm: Any, app_tracing: Any, receiver: Receiver
) -> None:
    link = otel.link_spans(pm)
    try:
        with (
            app_tracing.start_as_current_span("chat gpt-x", attributes=CHAT),
            pm.record(model="gpt-x", input="hi") as rec,
        ):
            rec.set_output("wrapped")
    finally:
        otel.unlink_spans(pm, link)
    pm.flush()
    assert [r.record_id for r in pm.find(limit=10).records] == [rec.record_id]
    ((_, _, sent),) = list(receiver.spans())
    assert attrs(sent.attributes)["provmark.record_id"] == rec.record_id


def test_background_forwarder_sends_new_records(
    pm: Any, receiver: Receiver, tmp_path: Path
) -> None:
    import time

    exporter = otel_export.RecordExporter(receiver.url, signal="logs")
    forwarder = otel_export.Forwarder(pm.store, exporter, cursor=tmp_path / "cursor")
    forwarder.start(interval=0.05)
    with pm.record(model="acme/chat", input="q") as rec:
        rec.set_output("forwarded in the background")
    pm.flush()
    deadline = time.monotonic() + 30
    while not list(receiver.logs()) and time.monotonic() < deadline:
        time.sleep(0.05)
    forwarder.stop()
    ((_, _, log),) = list(receiver.logs())
    assert attrs(log.attributes)["provmark.record_id"] == rec.record_id
    assert (tmp_path / "cursor").read_text() == "1\n"


def test_a_parent_made_in_a_trace_is_linked_where_it_went(
    pm: Any, app_tracing: Any, receiver: Receiver
) -> None:
    link = otel.link_spans(pm)
    try:
        with (
            app_tracing.start_as_current_span("agent step"),
            pm.record(model="acme/plan", input="goal") as parent,
        ):
            parent.set_output("plan")
    finally:
        otel.unlink_spans(pm, link)
    with pm.record(model="acme/act", input="plan") as child:
        child.add_parent(parent.record_id)
        child.set_output("done")
    pm.flush()
    exporter = otel_export.RecordExporter(
        receiver.url, resolve=otel_export.store_resolver(pm.store)
    )
    exporter.export(pm.store.iter_records())
    spans = {
        attrs(s.attributes)["provmark.record_id"]: s
        for _, scope, s in receiver.spans()
        if scope == "provmark"
    }
    parent_span, child_span = spans[parent.record_id], spans[child.record_id]
    (linked,) = child_span.links
    assert (linked.trace_id, linked.span_id) == (parent_span.trace_id, parent_span.span_id)
    assert parent_span.parent_span_id, "the parent's span is a child of the app's span"
