"""Streamed OpenAI replies: wrappers that pass every chunk (or event) through to the caller
and write the record when the stream ends, fails, or is closed or dropped early.

``SyncStream``/``AsyncStream`` wrap ``openai.Stream``/``openai.AsyncStream``; what a chunk
means is up to the state: :class:`ChatStreamState` for chat and text completions (deltas
per choice, tool calls), :class:`~provmark.integrations.openai_responses.ResponsesStreamState`
for the Responses API (typed events ending with the whole response).
"""

from __future__ import annotations

import contextlib
from typing import Any

from .openai_calls import Call, Settles


class StreamClosedEarly(Exception):
    """A streamed reply was closed (or dropped) before its last chunk."""


class StreamState:
    """What a stream has said so far; :meth:`end` writes the record once."""

    def __init__(self, inst: Settles, call: Call) -> None:
        self.inst, self.call = inst, call
        self.chunks = 0
        self.done = False

    def add(self, chunk: Any) -> None:
        raise NotImplementedError

    def result(self) -> tuple[Any, Any]:
        """(a response-like object with ``id``/``model``/``usage``..., the output)."""
        raise NotImplementedError

    def end(self, error: BaseException | None) -> None:
        if self.done:
            return
        self.done = True
        if error is None:
            self.call.rec.outcome.extra["stream_chunks"] = self.chunks
            self.inst.settle(self.call, self.result, "streamed response")
        else:
            self.inst.finish(self.call.rec, error)


class Summary:
    """The parts of a reply a stream tells piece by piece, shaped like a response."""

    def __init__(self, id: str | None, fingerprint: str | None, model: str | None, usage: Any):
        self.id, self.system_fingerprint, self.model, self.usage = id, fingerprint, model, usage


class ChatStreamState(StreamState):
    """Chat and text completion chunks: text (and tool calls) per choice, id, usage."""

    def __init__(self, inst: Settles, call: Call) -> None:
        super().__init__(inst, call)
        self.texts: dict[int, list[str]] = {}
        self.tools: dict[int, dict[int, dict[str, Any]]] = {}
        self.id: str | None = None
        self.fingerprint: str | None = None
        self.model: str | None = None
        self.usage: Any = None
        self.completion = call.endpoint.kind == "text_completion"

    def add(self, chunk: Any) -> None:
        self.chunks += 1
        self.id = self.id or getattr(chunk, "id", None)
        self.fingerprint = getattr(chunk, "system_fingerprint", None) or self.fingerprint
        self.model = getattr(chunk, "model", None) or self.model
        if getattr(chunk, "usage", None) is not None:
            self.usage = chunk.usage
        for choice in getattr(chunk, "choices", None) or ():
            text = choice.text if self.completion else None
            delta = getattr(choice, "delta", None)
            if delta is not None:
                text = delta.content
                for call in getattr(delta, "tool_calls", None) or ():
                    self._tool(choice.index, call)
            if text:
                self.texts.setdefault(choice.index, []).append(text)

    def _tool(self, index: int, call: Any) -> None:
        calls = self.tools.setdefault(index, {})
        entry = calls.setdefault(call.index, {"type": "function", "function": {"arguments": ""}})
        if call.id:
            entry["id"] = call.id
        fn = call.function
        if fn is not None:
            if fn.name:
                entry["function"]["name"] = fn.name
            entry["function"]["arguments"] += fn.arguments or ""

    def result(self) -> tuple[Any, Any]:
        return Summary(self.id, self.fingerprint, self.model, self.usage), self.output()

    def output(self) -> Any:
        indexes = sorted(set(self.texts) | set(self.tools)) or [0]
        if not self.tools and len(indexes) == 1:
            return "".join(self.texts.get(indexes[0], []))
        if self.completion:
            return ["".join(self.texts.get(i, [])) for i in indexes]
        out = []
        for i in indexes:
            message: dict[str, Any] = {"role": "assistant"}
            if i in self.texts:
                message["content"] = "".join(self.texts[i])
            if i in self.tools:
                message["tool_calls"] = [self.tools[i][k] for k in sorted(self.tools[i])]
            out.append(message)
        return out


class _Wrapped:
    """What both stream wrappers do with the SDK's stream: lend it every other attribute,
    and end the record if the caller drops the stream before its last chunk."""

    _stream: Any
    _state: StreamState

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __del__(self) -> None:
        state = getattr(self, "_state", None)
        if state is not None and not state.done:
            # a finaliser must not raise; a failure was counted (best_effort) or is moot
            with contextlib.suppress(Exception):
                state.end(StreamClosedEarly(f"dropped after {state.chunks} chunks"))


class SyncStream(_Wrapped):
    """Wraps ``openai.Stream``: iterate it as usual; the record is written at the end."""

    def __init__(self, stream: Any, state: StreamState) -> None:
        self._stream = stream
        self._iter = iter(stream)
        self._state = state

    def __iter__(self) -> SyncStream:
        return self

    def __next__(self) -> Any:
        try:
            chunk = next(self._iter)
        except StopIteration:
            self._state.end(None)
            raise
        except Exception as exc:
            self._state.end(exc)
            raise
        self._state.add(chunk)
        return chunk

    def close(self) -> None:
        if not self._state.done:
            self._state.end(StreamClosedEarly(f"closed after {self._state.chunks} chunks"))
        self._stream.close()

    def __enter__(self) -> SyncStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncStream(_Wrapped):
    """Wraps ``openai.AsyncStream`` (``async for``); the record is written at the end."""

    def __init__(self, stream: Any, state: StreamState) -> None:
        self._stream = stream
        self._iter = stream.__aiter__()
        self._state = state

    def __aiter__(self) -> AsyncStream:
        return self

    async def __anext__(self) -> Any:
        try:
            chunk = await self._iter.__anext__()
        except StopAsyncIteration:
            self._state.end(None)
            raise
        except Exception as exc:
            self._state.end(exc)
            raise
        self._state.add(chunk)
        return chunk

    async def close(self) -> None:
        if not self._state.done:
            self._state.end(StreamClosedEarly(f"closed after {self._state.chunks} chunks"))
        await self._stream.close()

    async def __aenter__(self) -> AsyncStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
