"""OpenAI-compatible clients: every chat/completion/embedding call becomes a record.

    client = provmark.integrations.openai.instrument(openai.OpenAI(base_url=...), pm)
    reply = client.chat.completions.create(model="m", messages=[...], temperature=0.2)
    pm.verify(reply.choices[0].message.content)

Works with ``OpenAI`` and ``AsyncOpenAI`` (and any OpenAI-compatible endpoint behind
``base_url``), plain and ``stream=True`` calls. Each record holds the requested model,
the messages as input (the store redacts the snapshot), the request parameters, the
response id, ``system_fingerprint``, the served model and the token usage. The output
hashed is the reply text when there is one choice with text; otherwise the JSON list
of the choices' messages (see docs/integrations.md).

Fallbacks are never silent: with ``fallback_models=[...]`` a failed call (connection
error, timeout, 429, 5xx) is retried with the next model and the record's ``fallback``
names the model that answered and why; an endpoint (a router) answering with another
model than the one asked for is recorded the same way.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

from ..capture.core import Recording
from ..capture.model import Model
from ..errors import ConfigError
from .common import CaptureTarget, clean_params, plain, policy_failure, require, same_model

C = TypeVar("C")

MINIMUM, BELOW = "1.0", "4"
_SKIP = frozenset(
    {
        "messages",
        "prompt",
        "input",
        "model",
        "stream",
        "stream_options",
        "extra_headers",
        "extra_query",
        "extra_body",
        "timeout",
        "user",
        "safety_identifier",
        "metadata",
        "prompt_cache_key",
    }
)
_ENDPOINTS = (
    ("chat", ("chat", "completions"), "messages"),
    ("text_completion", ("completions",), "prompt"),
    ("embeddings", ("embeddings",), "input"),
)
_ATTR = "_provmark_instrumentation"


def _openai() -> Any:
    return require("openai", extra="openai", package="openai", minimum=MINIMUM, below=BELOW)


class StreamClosedEarly(Exception):
    """A streamed reply was closed (or dropped) before its last chunk."""


class Instrumentation:
    """The provmark side of one instrumented client (``instrumentation(client)``)."""

    def __init__(
        self,
        pm: CaptureTarget,
        *,
        provider: str | None,
        model_version: str | None,
        fallback_models: Sequence[str],
        tags: dict[str, str] | None,
        endpoint: str,
    ) -> None:
        self.pm = pm
        self.provider = provider
        self.model_version = model_version
        self.fallback_models = tuple(fallback_models)
        self.tags = dict(tags or {})
        self.endpoint = endpoint
        self.originals: list[tuple[Any, str, Any]] = []
        self._models: dict[str, Model] = {}
        self._last: contextvars.ContextVar[str | None] = contextvars.ContextVar(
            f"provmark_openai_{id(self)}", default=None
        )

    @property
    def last_record_id(self) -> str | None:
        """Id of the last record made in this thread/task (a stream's once it ended)."""
        return self._last.get()

    def model(self, name: str) -> Model:
        found = self._models.get(name)
        if found is None:
            found = Model(name, version=self.model_version, provider=self.provider)
            self._models[name] = found
        return found

    # ------------------------------------------------------------ one call
    def start(self, operation: str, input_key: str, kwargs: dict[str, Any]) -> Recording:
        name = kwargs.get("model")
        if not isinstance(name, str) or not name:
            name = "unknown"
        rec = self.pm.record(
            model=self.model(name),
            input=plain(kwargs.get(input_key)),
            params=clean_params(kwargs, _SKIP),
            operation=operation,
            tags=self.tags or None,
        )
        rec.__enter__()
        return rec

    def finish(self, rec: Recording, error: BaseException | None = None) -> None:
        if error is not None:
            rec.__exit__(type(error), error, error.__traceback__)
        else:
            rec.__exit__(None, None, None)
        if rec.record_id:
            self._last.set(rec.record_id)

    def retryable(self, exc: BaseException) -> bool:
        oa = _openai()
        if isinstance(exc, oa.APIConnectionError | oa.RateLimitError):  # timeouts included
            return True
        return isinstance(exc, oa.APIStatusError) and exc.status_code >= 500

    def describe(
        self, rec: Recording, response: Any, requested: str, used: str, failures: list[str]
    ) -> None:
        """Response id, fingerprint, usage and fallback onto the recording."""
        served = getattr(response, "model", None) or used
        extra = rec.outcome.extra
        extra["endpoint"] = self.endpoint
        extra["served_model"] = served
        for key in ("id", "system_fingerprint"):
            value = getattr(response, key, None)
            if value:
                extra["response_id" if key == "id" else key] = value
        note_usage(rec, getattr(response, "usage", None))
        note_fallback(rec, requested, used, served, failures)

    def call_sync(self, create: Any, operation: str, input_key: str, kwargs: dict[str, Any]) -> Any:
        rec = self.start(operation, input_key, kwargs)
        requested = str(kwargs.get("model"))
        models = (requested, *self.fallback_models)
        failures: list[str] = []
        response = None
        for i, model in enumerate(models):
            try:
                response = create(**{**kwargs, "model": model})
                break
            except Exception as exc:
                if i == len(models) - 1 or not self.retryable(exc):
                    self.finish(rec, exc)
                    raise
                failures.append(f"{model}: {type(exc).__name__}")
        used = models[len(failures)]
        if kwargs.get("stream"):
            return SyncStream(response, self, rec, requested, used, failures)
        return self.complete(rec, response, operation, requested, used, failures)

    async def call_async(
        self, create: Any, operation: str, input_key: str, kwargs: dict[str, Any]
    ) -> Any:
        rec = self.start(operation, input_key, kwargs)
        requested = str(kwargs.get("model"))
        models = (requested, *self.fallback_models)
        failures: list[str] = []
        response = None
        for i, model in enumerate(models):
            try:
                response = await create(**{**kwargs, "model": model})
                break
            except Exception as exc:
                if i == len(models) - 1 or not self.retryable(exc):
                    self.finish(rec, exc)
                    raise
                failures.append(f"{model}: {type(exc).__name__}")
        used = models[len(failures)]
        if kwargs.get("stream"):
            return AsyncStream(response, self, rec, requested, used, failures)
        return self.complete(rec, response, operation, requested, used, failures)

    def complete(
        self,
        rec: Recording,
        response: Any,
        operation: str,
        requested: str,
        used: str,
        failures: list[str],
    ) -> Any:
        try:
            self.describe(rec, response, requested, used, failures)
            rec.set_output(output_of(operation, response))
        except Exception as exc:
            policy_failure(self.pm, f"reading the {operation} response", exc)
            return response
        self.finish(rec)
        return response


def output_of(operation: str, response: Any) -> Any:
    """What is hashed: the reply text for one text choice, else the JSON list."""
    if operation == "embeddings":
        return [plain(d.embedding) for d in response.data]
    choices = sorted(response.choices, key=lambda c: c.index)
    if operation == "text_completion":
        texts = [c.text for c in choices]
        return texts[0] if len(texts) == 1 else texts
    messages = [c.message for c in choices]
    if (
        len(messages) == 1
        and isinstance(messages[0].content, str)
        and not getattr(messages[0], "tool_calls", None)
    ):
        return messages[0].content
    return [plain(m) for m in messages]


def note_usage(rec: Recording, usage: Any) -> None:
    if usage is None:
        return
    tokens = {
        "input_tokens": getattr(usage, "prompt_tokens", None),
        "output_tokens": getattr(usage, "completion_tokens", None),
    }
    rec.set_usage(**{k: v for k, v in tokens.items() if isinstance(v, int)})


def note_fallback(
    rec: Recording, requested: str, used: str, served: str, failures: list[str]
) -> None:
    if failures:
        rec.set_fallback(requested, served, "retried after " + "; ".join(failures))
    elif not same_model(requested, served):
        rec.set_fallback(requested, served, "the endpoint answered with another model")


class _StreamState:
    """Accumulates a streamed reply: text (and tool calls) per choice, id, usage."""

    def __init__(
        self,
        inst: Instrumentation,
        rec: Recording,
        requested: str,
        used: str,
        failures: list[str],
    ) -> None:
        self.inst, self.rec = inst, rec
        self.requested, self.used, self.failures = requested, used, failures
        self.texts: dict[int, list[str]] = {}
        self.tools: dict[int, dict[int, dict[str, Any]]] = {}
        self.id: str | None = None
        self.fingerprint: str | None = None
        self.model: str | None = None
        self.usage: Any = None
        self.chunks = 0
        self.done = False
        self.operation = rec.outcome.spec.operation

    def add(self, chunk: Any) -> None:
        self.chunks += 1
        self.id = self.id or getattr(chunk, "id", None)
        self.fingerprint = getattr(chunk, "system_fingerprint", None) or self.fingerprint
        self.model = getattr(chunk, "model", None) or self.model
        if getattr(chunk, "usage", None) is not None:
            self.usage = chunk.usage
        for choice in getattr(chunk, "choices", None) or ():
            text = choice.text if self.operation == "text_completion" else None
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

    def output(self) -> Any:
        indexes = sorted(set(self.texts) | set(self.tools)) or [0]
        if not self.tools and len(indexes) == 1:
            return "".join(self.texts.get(indexes[0], []))
        if self.operation == "text_completion":
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

    def end(self, error: BaseException | None) -> None:
        if self.done:
            return
        self.done = True
        rec = self.rec
        if error is None:
            try:
                response = _Summary(self.id, self.fingerprint, self.model, self.usage)
                self.inst.describe(rec, response, self.requested, self.used, self.failures)
                rec.outcome.extra["stream_chunks"] = self.chunks
                rec.set_output(self.output())
            except Exception as exc:
                policy_failure(self.inst.pm, "reading the streamed response", exc)
                return
        self.inst.finish(rec, error)


class _Summary:
    def __init__(self, id: str | None, fingerprint: str | None, model: str | None, usage: Any):
        self.id, self.system_fingerprint, self.model, self.usage = id, fingerprint, model, usage


class SyncStream:
    """Wraps ``openai.Stream``: iterate it as usual; the record is written at the end."""

    def __init__(
        self,
        stream: Any,
        inst: Instrumentation,
        rec: Recording,
        requested: str,
        used: str,
        failures: list[str],
    ) -> None:
        self._stream = stream
        self._iter = iter(stream)
        self._state = _StreamState(inst, rec, requested, used, failures)

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

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __del__(self) -> None:
        state = getattr(self, "_state", None)
        if state is not None and not state.done:
            # a finaliser must not raise; a failure was counted (best_effort) or is moot
            with contextlib.suppress(Exception):
                state.end(StreamClosedEarly(f"dropped after {state.chunks} chunks"))


class AsyncStream:
    """Wraps ``openai.AsyncStream`` (``async for``); the record is written at the end."""

    def __init__(
        self,
        stream: Any,
        inst: Instrumentation,
        rec: Recording,
        requested: str,
        used: str,
        failures: list[str],
    ) -> None:
        self._stream = stream
        self._iter = stream.__aiter__()
        self._state = _StreamState(inst, rec, requested, used, failures)

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

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __del__(self) -> None:
        state = getattr(self, "_state", None)
        if state is not None and not state.done:
            with contextlib.suppress(Exception):
                state.end(StreamClosedEarly(f"dropped after {state.chunks} chunks"))


# ---------------------------------------------------------------- instrument


def instrument(
    client: C,
    pm: CaptureTarget,
    *,
    provider: str | None = None,
    model_version: str | None = None,
    fallback_models: Sequence[str] = (),
    tags: dict[str, str] | None = None,
) -> C:
    """Record every ``chat.completions``, ``completions`` and ``embeddings`` call of
    ``client`` (an ``openai.OpenAI`` or ``openai.AsyncOpenAI``) into ``pm``.

    ``provider`` defaults to ``openai`` for api.openai.com and to the endpoint's host
    otherwise. Clients made from it with ``with_options``/``copy`` are instrumented too.
    Returns ``client`` itself.
    """
    oa = _openai()
    if not isinstance(client, oa.OpenAI | oa.AsyncOpenAI):
        raise ConfigError(
            "instrument(client): client must be an openai.OpenAI or openai.AsyncOpenAI, "
            f"not {type(client).__name__}"
        )
    if isinstance(vars(client).get(_ATTR), Instrumentation):
        return client  # already instrumented
    url = urlsplit(str(client.base_url))
    host = url.hostname or "unknown"
    if provider is None:
        provider = (
            "openai" if host.endswith("openai.com") else host + (f":{url.port}" if url.port else "")
        )
    endpoint = f"{url.scheme}://{host}{f':{url.port}' if url.port else ''}{url.path}"
    inst = Instrumentation(
        pm,
        provider=provider,
        model_version=model_version,
        fallback_models=fallback_models,
        tags=tags,
        endpoint=endpoint,
    )
    is_async = isinstance(client, oa.AsyncOpenAI)
    for operation, path, input_key in _ENDPOINTS:
        resource: Any = client
        for part in path:
            resource = getattr(resource, part)
        create = resource.create
        inst.originals.append((resource, "create", vars(resource).get("create")))
        resource.create = _wrapper(inst, create, operation, input_key, is_async)
    for name in ("with_options", "copy"):
        original = getattr(client, name)
        inst.originals.append((client, name, vars(client).get(name)))
        setattr(client, name, _copier(original, pm, provider, model_version, fallback_models, tags))
    setattr(client, _ATTR, inst)
    return client


def _wrapper(inst: Instrumentation, create: Any, operation: str, key: str, is_async: bool) -> Any:
    if is_async:

        @functools.wraps(create)
        async def acreate(**kwargs: Any) -> Any:
            return await inst.call_async(create, operation, key, kwargs)

        return acreate

    @functools.wraps(create)
    def screate(**kwargs: Any) -> Any:
        return inst.call_sync(create, operation, key, kwargs)

    return screate


def _copier(original: Any, pm: CaptureTarget, *options: Any) -> Any:
    provider, model_version, fallback_models, tags = options

    @functools.wraps(original)
    def copy(*args: Any, **kwargs: Any) -> Any:
        return instrument(
            original(*args, **kwargs),
            pm,
            provider=provider,
            model_version=model_version,
            fallback_models=fallback_models,
            tags=tags,
        )

    return copy


def instrumentation(client: Any) -> Instrumentation:
    """The :class:`Instrumentation` of an instrumented client (``.last_record_id``)."""
    inst = vars(client).get(_ATTR)
    if not isinstance(inst, Instrumentation):
        raise ConfigError("this client is not instrumented: call instrument(client, pm) first")
    return inst


def uninstrument(client: Any) -> None:
    """Undo :func:`instrument` on ``client``."""
    inst = vars(client).pop(_ATTR, None)
    if not isinstance(inst, Instrumentation):
        return
    for owner, name, previous in inst.originals:
        if previous is None:
            vars(owner).pop(name, None)
        else:
            setattr(owner, name, previous)
