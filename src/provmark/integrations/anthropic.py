"""The Anthropic SDK: every ``client.messages.create`` (plain, ``stream=True``, tool use) and
``client.messages.stream(...)`` call becomes a record.

    client = provmark.integrations.anthropic.instrument(anthropic.Anthropic(), pm)
    message = client.messages.create(model="claude-x", max_tokens=256, messages=[...])
    pm.verify(message.content[0].text)

Works with ``Anthropic`` and ``AsyncAnthropic``, ``with_raw_response`` and
``with_streaming_response``, and fallbacks (``fallback_models=``; 429, 5xx, 529 and
connection errors are retried with the next model; ``model.name`` is the model that
answered). The record's input is the messages (with ``system`` as ``{"system",
"messages"}`` when given); the output is the reply text when the reply is text only, else
the JSON list of its content blocks (``{"type": "text", "text"}``, ``{"type":
"tool_use", "id", "name", "input"}``, others as the SDK dumps them).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TypeVar

from .common import CaptureTarget, clean_params, plain, require
from .openai import (
    Instrumentation,
    instrument_with,
    instrumentation,
    uninstrument,
)
from .openai_calls import Call, Endpoint
from .openai_streams import StreamClosedEarly, StreamState, Summary

C = TypeVar("C")
MINIMUM, BELOW = "0.40", "3"
MESSAGES = Endpoint("messages", ("messages",), "messages")
_SKIP = frozenset(
    {
        "messages",
        "system",
        "model",
        "stream",
        "metadata",
        "extra_headers",
        "extra_query",
        "extra_body",
        "timeout",
        "output_format",
        "user_profile_id",
        "workspace_id",
    }
)
_HASHED = frozenset({"tools", "tool_choice", "output_config", "json_schema"})

__all__ = ["AnthropicInstrumentation", "instrument", "instrumentation", "uninstrument"]


def _anthropic() -> Any:
    return require(
        "anthropic", extra="anthropic", package="anthropic", minimum=MINIMUM, below=BELOW
    )


def block(value: Any) -> dict[str, Any]:
    """One content block as recorded (the same for a reply and for a stream)."""
    data = plain(value)
    if not isinstance(data, dict):
        return {"value": data}
    kind = data.get("type")
    if kind == "text":
        return {"type": "text", "text": data.get("text", "")}
    if kind == "tool_use":
        return {k: data.get(k) for k in ("type", "id", "name", "input")}
    return data


def output_of(message: Any) -> Any:
    blocks = [block(b) for b in getattr(message, "content", None) or ()]
    if blocks and all(b.get("type") == "text" for b in blocks):
        return "".join(str(b["text"]) for b in blocks)
    return blocks


class AnthropicInstrumentation(Instrumentation):
    """The provmark side of one instrumented Anthropic client."""

    def request(self, endpoint: Endpoint, kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        messages = plain(kwargs.get("messages"))
        system = kwargs.get("system")
        inp = messages if system is None else {"system": plain(system), "messages": messages}
        return inp, clean_params(kwargs, _SKIP, _HASHED)

    def output(self, endpoint: Endpoint, response: Any) -> Any:
        return output_of(response)

    def describe(self, call: Call, response: Any) -> None:
        super().describe(call, response)
        reason = getattr(response, "stop_reason", None)
        if reason:
            call.rec.outcome.extra["stop_reason"] = reason

    def retryable(self, exc: BaseException) -> bool:
        sdk = _anthropic()
        if isinstance(exc, sdk.APIConnectionError | sdk.RateLimitError):
            return True
        return isinstance(exc, sdk.APIStatusError) and exc.status_code >= 500

    def stream_state(self, call: Call) -> StreamState:
        return MessageStreamState(self, call)


class MessageStreamState(StreamState):
    """Raw Messages stream events: content blocks by index, usage, stop reason."""

    def __init__(self, inst: Instrumentation, call: Call) -> None:
        super().__init__(inst, call)
        self.message: Any = None
        self.blocks: dict[int, dict[str, Any]] = {}
        self.partial: dict[int, str] = {}
        self.usage: dict[str, int] = {}
        self.stop_reason: str | None = None

    def add(self, event: Any) -> None:
        self.chunks += 1
        kind = getattr(event, "type", "")
        if kind == "message_start":
            self.message = event.message
            self._usage(getattr(event.message, "usage", None))
        elif kind == "content_block_start":
            self.blocks[event.index] = block(event.content_block)
        elif kind == "content_block_delta":
            delta = event.delta
            entry = self.blocks.setdefault(event.index, {"type": "text", "text": ""})
            if delta.type == "text_delta":
                entry["text"] = entry.get("text", "") + delta.text
            elif delta.type == "input_json_delta":
                self.partial[event.index] = self.partial.get(event.index, "") + delta.partial_json
            elif delta.type == "thinking_delta":
                entry["thinking"] = entry.get("thinking", "") + delta.thinking
        elif kind == "message_delta":
            self.stop_reason = getattr(event.delta, "stop_reason", None) or self.stop_reason
            self._usage(getattr(event, "usage", None))

    def _usage(self, usage: Any) -> None:
        for key in ("input_tokens", "output_tokens"):
            value = getattr(usage, key, None)
            if isinstance(value, int):
                self.usage[key] = value

    def result(self) -> tuple[Any, Any]:
        for index, text in self.partial.items():
            self.blocks[index]["input"] = json.loads(text) if text else {}
        blocks = [self.blocks[i] for i in sorted(self.blocks)]
        if self.stop_reason:
            self.call.rec.outcome.extra["stop_reason"] = self.stop_reason
        msg = self.message
        usage = _Usage(self.usage)
        summary = Summary(getattr(msg, "id", None), None, getattr(msg, "model", None), usage)
        if blocks and all(b.get("type") == "text" for b in blocks):
            return summary, "".join(str(b.get("text", "")) for b in blocks)
        return summary, blocks


class _Usage:
    def __init__(self, tokens: dict[str, int]) -> None:
        self.input_tokens = tokens.get("input_tokens")
        self.output_tokens = tokens.get("output_tokens")


class StreamManager:
    """Wraps ``client.messages.stream(...)``'s manager: the record is written when the
    ``with`` block ends, from the message the stream accumulated."""

    def __init__(self, inner: Any, inst: AnthropicInstrumentation, kwargs: dict[str, Any]):
        self._inner, self._inst, self._kwargs = inner, inst, kwargs
        self._call: Call | None = None
        self._stream: Any = None

    def _open(self, stream: Any) -> Any:
        self._stream = stream
        return stream

    def __enter__(self) -> Any:
        self._call = call = self._inst.start(MESSAGES, self._kwargs)
        call.used = call.requested
        try:
            return self._open(self._inner.__enter__())
        except Exception as exc:
            self._inst.finish(call.rec, exc)
            raise

    def __exit__(self, *exc: Any) -> Any:
        try:
            self._close(exc[1])
        finally:
            result = self._inner.__exit__(*exc)
        return result

    async def __aenter__(self) -> Any:
        self._call = call = self._inst.start(MESSAGES, self._kwargs)
        call.used = call.requested
        try:
            return self._open(await self._inner.__aenter__())
        except Exception as exc:
            self._inst.finish(call.rec, exc)
            raise

    async def __aexit__(self, *exc: Any) -> Any:
        try:
            self._close(exc[1])
        finally:
            result = await self._inner.__aexit__(*exc)
        return result

    def _close(self, error: BaseException | None) -> None:
        call = self._call
        if call is None or call.rec.record_id is not None:
            return
        if error is not None:
            self._inst.finish(call.rec, error)
            return
        try:
            message = self._stream.current_message_snapshot
        except AssertionError:  # no message_start read
            message = None
        if message is None or getattr(message, "stop_reason", None) is None:
            self._inst.finish(call.rec, StreamClosedEarly("the stream was left before its end"))
            return
        self._inst.complete(call, message)


def _stream_wrapper(inst: AnthropicInstrumentation, original: Any) -> Any:
    def stream(**kwargs: Any) -> StreamManager:
        return StreamManager(original(**kwargs), inst, kwargs)

    return stream


def instrument(
    client: C,
    pm: CaptureTarget,
    *,
    provider: str | None = None,
    model_version: str | None = None,
    fallback_models: Sequence[str] = (),
    tags: dict[str, str] | None = None,
) -> C:
    """Record every ``messages.create`` and ``messages.stream`` call of ``client`` (an
    ``anthropic.Anthropic`` or ``anthropic.AsyncAnthropic``) into ``pm``.

    ``provider`` defaults to ``anthropic`` for api.anthropic.com and to the endpoint's
    host otherwise. Returns ``client`` itself; ``uninstrument(client)`` undoes it.
    """
    sdk = _anthropic()
    inst = instrument_with(
        AnthropicInstrumentation,
        client,
        pm,
        (sdk.Anthropic, sdk.AsyncAnthropic),
        ("anthropic", "anthropic.com"),
        (MESSAGES,),
        instrument,
        provider=provider,
        model_version=model_version,
        fallback_models=fallback_models,
        tags=tags,
    )
    if inst is None:
        return client
    messages: Any = getattr(client, "messages")  # noqa: B009
    inst.originals.append((messages, "stream", vars(messages).get("stream")))
    messages.stream = _stream_wrapper(inst, messages.stream)
    return client
