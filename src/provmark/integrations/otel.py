"""OpenTelemetry: GenAI spans become provmark records; records name themselves on spans.

    provider = TracerProvider()
    provider.add_span_processor(provmark.integrations.otel.span_processor(pm))
    provmark.integrations.otel.link_spans(pm)     # provmark.record_id on the current span

The processor reads the ``gen_ai.*`` semantic conventions of each ended span whose
``gen_ai.operation.name`` is one of ``operations``: provider, request model and
parameters (temperature, top_p, top_k, max_tokens, seed, penalties, stop sequences,
choice count), response model and id, finish reasons, token usage, and the messages
when the instrumentation captured them (``gen_ai.input.messages`` /
``gen_ai.output.messages``, as attributes or on a span event). The output hashed is
the reply text (one message of text parts), else the JSON of the output messages.
A span that carried no output content still gets a record: its output is then a
reference to the span (media type ``application/vnd.provmark.span-ref+json``), and
``extra.output_source`` says so; enable content capture in the instrumentation to
make such outputs verifiable by content.

A span that names its operation when it starts (the GenAI conventions ask for
``gen_ai.operation.name`` at creation) gets ``provmark.record_id`` at once, so the
exported span names its record; the record's ``extra.trace_id``/``span_id`` name the
span either way. Spans of OpenInference instrumentations (``openinference.span.kind``
``LLM``/``EMBEDDING``, :mod:`provmark.integrations.openinference`) are read too, for the
parts that carry no ``gen_ai.*`` attribute.

A span already carrying another ``provmark.record_id`` (recorded by a provmark wrapper
while it was open) is not recorded twice. A response model that differs from the
request model (beyond a pinned snapshot of it) is recorded as a ``fallback``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from ..capture.core import Outcome
from ..capture.model import Model
from ..record import new_record_id
from . import openinference
from .common import CaptureTarget, Hook, add_hook, policy_failure, remove_hook, require, same_model

MINIMUM, BELOW = "1.20", "2"
RECORD_ID_ATTRIBUTE = "provmark.record_id"
SPAN_REF_MEDIA_TYPE = "application/vnd.provmark.span-ref+json"
DEFAULT_OPERATIONS = ("chat", "text_completion", "generate_content", "embeddings")

_PARAMS = {
    "gen_ai.request.temperature": "temperature",
    "gen_ai.request.top_p": "top_p",
    "gen_ai.request.top_k": "top_k",
    "gen_ai.request.max_tokens": "max_tokens",
    "gen_ai.request.seed": "seed",
    "gen_ai.openai.request.seed": "seed",
    "gen_ai.request.frequency_penalty": "frequency_penalty",
    "gen_ai.request.presence_penalty": "presence_penalty",
    "gen_ai.request.stop_sequences": "stop",
    "gen_ai.request.choice.count": "n",
    "gen_ai.request.stream": "stream",
    "gen_ai.output.type": "output_type",
}
_EXTRA = {
    "gen_ai.response.id": "response_id",
    "gen_ai.response.model": "served_model",
    "gen_ai.response.finish_reasons": "finish_reasons",
    "gen_ai.openai.response.system_fingerprint": "system_fingerprint",
    "gen_ai.conversation.id": "conversation_id",
    "gen_ai.agent.name": "agent_name",
}


def _sdk() -> Any:
    require(
        "opentelemetry.sdk.trace",
        extra="otel",
        package="opentelemetry-sdk",
        minimum=MINIMUM,
        below=BELOW,
    )
    from opentelemetry.sdk import trace

    return trace


def _trace_api() -> Any:
    _sdk()
    from opentelemetry import trace

    return trace


class GenAISpanRecorder:
    """The behaviour of the processor (see :func:`span_processor`)."""

    def __init__(
        self,
        pm: CaptureTarget,
        *,
        operations: Iterable[str] = DEFAULT_OPERATIONS,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        self.pm = pm
        self.operations = frozenset(operations)
        self.tags = dict(tags or {})
        self.recorded = 0
        self._models: dict[tuple[str, str | None], Model] = {}
        self._errors: dict[str, type[Exception]] = {}
        # record ids given to open spans, by (trace id, span id)
        self._pending: dict[tuple[int, int], str] = {}
        self._lock = threading.Lock()

    def operation(self, attrs: Mapping[str, Any]) -> str | None:
        name = attrs.get("gen_ai.operation.name") or openinference.operation_of(attrs)
        return str(name) if name in self.operations else None

    # SpanProcessor interface
    def on_start(self, span: Any, parent_context: Any = None) -> None:
        attrs = span.attributes or {}
        if RECORD_ID_ATTRIBUTE in attrs or self.operation(attrs) is None:
            return
        ctx = span.get_span_context()
        record_id = new_record_id()
        span.set_attribute(RECORD_ID_ATTRIBUTE, record_id)
        with self._lock:
            self._pending[(ctx.trace_id, ctx.span_id)] = record_id

    def on_end(self, span: Any) -> None:
        ctx = span.get_span_context()
        with self._lock:
            given = self._pending.pop((ctx.trace_id, ctx.span_id), None)
        attrs = span.attributes or {}
        operation = self.operation(attrs)
        if operation is None:
            return
        stated = attrs.get(RECORD_ID_ATTRIBUTE)
        if stated is not None and stated != given:
            return  # a provmark wrapper recorded this call while the span was open
        try:
            outcome_parts = self.read(span, attrs, operation)
        except Exception as exc:
            policy_failure(self.pm, f"reading GenAI span {span.name!r}", exc)
            return
        self.emit(span, *outcome_parts, record_id=given)

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        flush = getattr(self.pm, "flush", None)
        if callable(flush):
            flush(timeout_millis / 1000)
        return True

    # reading a span
    def model(self, name: str, provider: str | None) -> Model:
        found = self._models.get((name, provider))
        if found is None:
            found = Model(name, provider=provider)
            self._models[(name, provider)] = found
        return found

    def read(self, span: Any, attrs: Mapping[str, Any], operation: str) -> tuple[Any, ...]:
        oi = openinference.fields(attrs) or openinference.Fields(operation)
        provider = attrs.get("gen_ai.provider.name") or attrs.get("gen_ai.system") or oi.provider
        requested = (
            attrs.get("gen_ai.request.model") or attrs.get("gen_ai.response.model") or oi.model
        )
        model = self.model(str(requested or "unknown"), str(provider) if provider else None)
        params = dict(oi.params)
        for key, name in _PARAMS.items():
            if key in attrs:
                value = attrs[key]
                params[name] = list(value) if isinstance(value, tuple) else value
        ctx = span.get_span_context()
        extra: dict[str, Any] = {
            "trace_id": f"{ctx.trace_id:032x}",
            "span_id": f"{ctx.span_id:016x}",
            "span_name": span.name,
        }
        for key, name in _EXTRA.items():
            if key in attrs:
                value = attrs[key]
                extra[name] = list(value) if isinstance(value, tuple) else value
        for key, value in oi.extra.items():
            extra.setdefault(key, value)
        usage = {
            "input_tokens": attrs.get("gen_ai.usage.input_tokens")
            or attrs.get("gen_ai.usage.prompt_tokens")
            or oi.usage.get("input_tokens"),
            "output_tokens": attrs.get("gen_ai.usage.output_tokens")
            or attrs.get("gen_ai.usage.completion_tokens")
            or oi.usage.get("output_tokens"),
        }
        messages_in = _messages(span, attrs, "gen_ai.input.messages", "gen_ai.prompt")
        system = attrs.get("gen_ai.system_instructions")
        if system is not None and messages_in is not None:
            messages_in = {"system_instructions": _json(system), "messages": messages_in}
        if messages_in is None:
            messages_in = oi.input
        output = _messages(span, attrs, "gen_ai.output.messages", "gen_ai.completion")
        if output is None:
            output = oi.output
        user = attrs.get("enduser.id") or attrs.get("user.id") or oi.user
        return model, operation, messages_in, params, extra, usage, output, requested, user

    def emit(
        self,
        span: Any,
        model: Model,
        operation: str,
        messages_in: Any,
        params: dict[str, Any],
        extra: dict[str, Any],
        usage: dict[str, Any],
        output: Any,
        requested: Any,
        user: Any,
        *,
        record_id: str | None = None,
    ) -> None:
        pm = self.pm
        error = self.error_of(span)
        rec = pm.record(
            model=model, input=messages_in, params=params, operation=operation, tags=self.tags
        )
        rec.__enter__()
        rec.outcome.started_ns = int(span.start_time)
        rec.outcome.record_id = record_id
        rec.outcome.extra.update(extra)
        rec.set_usage(**{k: int(v) for k, v in usage.items() if isinstance(v, int)})
        served = extra.get("served_model")
        if requested and served and not same_model(str(requested), str(served)):
            rec.set_fallback(str(requested), str(served), "the response came from another model")
        if error is None:
            if output is None:
                rec.outcome.extra["output_source"] = "span_reference"
                ref = {k: extra[k] for k in ("trace_id", "span_id", "response_id") if k in extra}
                rec.set_output(ref, media_type=SPAN_REF_MEDIA_TYPE)
            else:
                rec.outcome.extra["output_source"] = "span_content"
                rec.set_output(output_value(output))
        if user:
            with pm.acting_for(str(user)):
                rec.__exit__(None if error is None else type(error), error, None)
        else:
            rec.__exit__(None if error is None else type(error), error, None)
        if rec.record_id:
            self.recorded += 1

    def error_of(self, span: Any) -> Exception | None:
        status = span.status
        if status is None or status.status_code.name != "ERROR":
            return None
        name = str((span.attributes or {}).get("error.type") or "SpanError")
        cls = self._errors.get(name)
        if cls is None:
            cls = type("SpanError", (Exception,), {"__qualname__": name})
            self._errors[name] = cls
        return cls(status.description or "the span ended with an error status")


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return list(value) if isinstance(value, tuple) else value


def _messages(span: Any, attrs: Mapping[str, Any], key: str, legacy: str) -> Any:
    if key in attrs:
        return _json(attrs[key])
    for event in span.events or ():
        event_attrs = event.attributes or {}
        if key in event_attrs:
            return _json(event_attrs[key])
    for event in span.events or ():
        event_attrs = event.attributes or {}
        if legacy in event_attrs:
            return _json(event_attrs[legacy])
    return _json(attrs[legacy]) if legacy in attrs else None


def output_value(messages: Any) -> Any:
    """One output message made of text parts -> its text; anything else as it is."""
    if isinstance(messages, list) and len(messages) == 1 and isinstance(messages[0], dict):
        parts = messages[0].get("parts")
        if (
            isinstance(parts, list)
            and parts
            and all(isinstance(p, dict) and p.get("type") == "text" for p in parts)
        ):
            return "".join(str(p.get("content", "")) for p in parts)
        if isinstance(messages[0].get("content"), str) and not messages[0].get("tool_calls"):
            return messages[0]["content"]
    return messages


def span_processor(
    pm: CaptureTarget,
    *,
    operations: Iterable[str] = DEFAULT_OPERATIONS,
    tags: Mapping[str, str] | None = None,
) -> Any:
    """An ``opentelemetry.sdk.trace.SpanProcessor`` turning GenAI spans into records.

    Add it to a ``TracerProvider`` with ``add_span_processor``. It runs when a span
    ends, on that thread; with ``policy="strict"`` a span that cannot be recorded
    raises :class:`~provmark.CaptureError` from ``span.end()``.
    """
    sdk = _sdk()
    cls = type("ProvmarkSpanProcessor", (GenAISpanRecorder, sdk.SpanProcessor), {})
    return cls(pm, operations=operations, tags=tags)


class SpanLink(Hook):
    """Links each new record and the span current when it is captured, both ways: the
    record gets ``extra.trace_id``/``span_id`` (signed with it), the span the record id."""

    def __init__(self, trace_api: Any) -> None:
        self.trace = trace_api

    def before(self, outcome: Outcome) -> None:
        if "span_id" in outcome.extra:  # made from a span (by the processor)
            return
        ctx = self.trace.get_current_span().get_span_context()
        if ctx.is_valid:
            outcome.extra["trace_id"] = f"{ctx.trace_id:032x}"
            outcome.extra["span_id"] = f"{ctx.span_id:016x}"

    def after(self, outcome: Outcome, record_id: str) -> None:
        span = self.trace.get_current_span()
        if not span.is_recording():
            return
        if outcome.extra.get("span_id") != f"{span.get_span_context().span_id:016x}":
            return  # made from a span that has already ended
        span.set_attribute(RECORD_ID_ATTRIBUTE, record_id)
        span.add_event("provmark.record", {RECORD_ID_ATTRIBUTE: record_id})


def link_spans(pm: CaptureTarget) -> SpanLink:
    """From now on every record ``pm`` captures is named on the current span (attribute
    ``provmark.record_id``, plus a ``provmark.record`` event per record). Undo with
    :func:`unlink_spans`."""
    link = SpanLink(_trace_api())
    add_hook(pm, link)
    return link


def unlink_spans(pm: CaptureTarget, link: SpanLink) -> None:
    remove_hook(pm, link)
