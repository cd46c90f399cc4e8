"""OpenAI-compatible clients: every chat/completion/embedding/Responses call becomes a record.

    client = provmark.integrations.openai.instrument(openai.OpenAI(base_url=...), pm)
    reply = client.chat.completions.create(model="m", messages=[...], temperature=0.2)
    pm.verify(reply.choices[0].message.content)

Works with ``OpenAI`` and ``AsyncOpenAI`` (and any OpenAI-compatible endpoint behind
``base_url``), plain and ``stream=True`` calls, ``with_raw_response`` and
``with_streaming_response``, and the Responses API (``client.responses.create``). Each
record holds the model that answered, the messages as input (the store redacts the
snapshot), the request parameters, the response id, ``system_fingerprint``, the served
model and the token usage. The output hashed is the reply text when there is one choice
with text; otherwise the JSON list of the choices' messages (see docs/integrations.md).

Fallbacks are never silent: with ``fallback_models=[...]`` a failed call (connection
error, timeout, 429, 5xx) is retried with the next model; the record's ``model.name`` is
then the model that answered and its ``fallback`` names the model asked for and why. An
endpoint (a router) answering with another model than the one asked for is recorded the
same way.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

from ..capture.core import Recording
from ..capture.model import Model
from ..errors import ConfigError
from . import openai_responses as responses_api
from .common import (
    CaptureTarget,
    answered_by,
    clean_params,
    plain,
    policy_failure,
    require,
    same_model,
)
from .openai_calls import ENDPOINTS, Call, Endpoint
from .openai_streams import (
    AsyncStream,
    ChatStreamState,
    StreamClosedEarly,
    StreamState,
    SyncStream,
)

C = TypeVar("C")
K = TypeVar("K", bound="Instrumentation")

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
# the header openai's with_raw_response ("true") / with_streaming_response ("stream") set
RAW_RESPONSE_HEADER = "X-Stainless-Raw-Response"
_ATTR = "_provmark_instrumentation"
_RAW_WRAPPERS = ("with_raw_response", "with_streaming_response")

__all__ = [
    "Instrumentation",
    "StreamClosedEarly",
    "instrument",
    "instrumentation",
    "uninstrument",
]


def _openai() -> Any:
    return require("openai", extra="openai", package="openai", minimum=MINIMUM, below=BELOW)


def raw_mode(kwargs: Mapping[str, Any]) -> str | None:
    """``"true"`` under ``with_raw_response``, ``"stream"`` under ``with_streaming_response``."""
    headers = kwargs.get("extra_headers")
    if isinstance(headers, Mapping):
        value = headers.get(RAW_RESPONSE_HEADER)
        return value if isinstance(value, str) else None
    return None


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
    def start(self, endpoint: Endpoint, kwargs: dict[str, Any]) -> Call:
        name = kwargs.get("model")
        if not isinstance(name, str) or not name:
            name = "unknown"
        inp, params = self.request(endpoint, kwargs)
        rec = self.pm.record(
            model=self.model(name),
            input=inp,
            params=params,
            operation=endpoint.operation,
            tags=self.tags or None,
        )
        rec.__enter__()
        if endpoint.kind == "responses":
            rec.outcome.extra["api"] = "responses"
        return Call(rec, endpoint, name)

    def request(self, endpoint: Endpoint, kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """(input, params) of a request."""
        if endpoint.kind == "responses":
            inp = responses_api.request_input(kwargs)
            return inp, clean_params(kwargs, _SKIP | responses_api.SKIP, responses_api.HASHED)
        return plain(kwargs.get(endpoint.input_key)), clean_params(kwargs, _SKIP)

    def output(self, endpoint: Endpoint, response: Any) -> Any:
        """What is hashed of a (parsed) response."""
        if endpoint.kind == "responses":
            return responses_api.output_of(response)
        return output_of(endpoint, response)

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

    def describe(self, call: Call, response: Any) -> None:
        """Response id, fingerprint, usage, fallback and the answering model."""
        rec = call.rec
        served = getattr(response, "model", None) or call.used
        extra = rec.outcome.extra
        extra["endpoint"] = self.endpoint
        extra["served_model"] = served
        for key in ("id", "system_fingerprint"):
            value = getattr(response, key, None)
            if value:
                extra["response_id" if key == "id" else key] = value
        note_usage(rec, getattr(response, "usage", None))
        note_fallback(rec, call.requested, call.used, served, call.failures)
        if rec.outcome.fallback is not None:
            answered = call.used if same_model(call.used, served) else served
            answered_by(rec, self.model(answered))

    def settle(self, call: Call, result: Any, what: str) -> None:
        """``result()`` -> (response, output) onto the record, then write it; a reply that
        cannot be read follows the capture policy (the caller still gets its reply)."""
        try:
            response, output = result()
            self.describe(call, response)
            call.rec.set_output(output)
        except Exception as exc:
            policy_failure(self.pm, f"reading the {what}", exc)
            return
        self.finish(call.rec)

    def tried(self, call: Call, model: str, exc: Exception, last: bool) -> None:
        if last or not self.retryable(exc):
            self.finish(call.rec, exc)
            raise exc
        call.failures.append(f"{model}: {type(exc).__name__}")

    def call_sync(self, create: Any, endpoint: Endpoint, kwargs: dict[str, Any]) -> Any:
        call = self.start(endpoint, kwargs)
        models = (call.requested, *self.fallback_models)
        response: Any = None
        for i, model in enumerate(models):
            try:
                response = create(**{**kwargs, "model": model})
                break
            except Exception as exc:
                self.tried(call, model, exc, i == len(models) - 1)
        call.used = models[len(call.failures)]
        if raw_mode(kwargs) is not None:
            try:
                parsed = response.parse()  # cached: the caller's own .parse() gets the same
            except Exception as exc:
                policy_failure(self.pm, f"parsing the raw {endpoint.operation} response", exc)
                return response
            return self.raw(call, response, parsed, kwargs)
        if kwargs.get("stream"):
            return SyncStream(response, self.stream_state(call))
        return self.complete(call, response)

    async def call_async(self, create: Any, endpoint: Endpoint, kwargs: dict[str, Any]) -> Any:
        call = self.start(endpoint, kwargs)
        models = (call.requested, *self.fallback_models)
        response: Any = None
        for i, model in enumerate(models):
            try:
                response = await create(**{**kwargs, "model": model})
                break
            except Exception as exc:
                self.tried(call, model, exc, i == len(models) - 1)
        call.used = models[len(call.failures)]
        if raw_mode(kwargs) is not None:
            try:
                parsed = response.parse()  # a coroutine under with_streaming_response
                if inspect.isawaitable(parsed):
                    parsed = await parsed
            except Exception as exc:
                policy_failure(self.pm, f"parsing the raw {endpoint.operation} response", exc)
                return response
            return self.raw(call, response, parsed, kwargs)
        if kwargs.get("stream"):
            return AsyncStream(response, self.stream_state(call))
        return self.complete(call, response)

    def stream_state(self, call: Call) -> StreamState:
        if call.endpoint.kind == "responses":
            return responses_api.ResponsesStreamState(self, call)
        return ChatStreamState(self, call)

    def complete(self, call: Call, response: Any) -> Any:
        def result() -> tuple[Any, Any]:
            if call.endpoint.kind == "responses":
                responses_api.describe(call.rec.outcome.extra, response)
            return response, self.output(call.endpoint, response)

        self.settle(call, result, f"{call.endpoint.operation} response")
        return response

    def raw(self, call: Call, raw: Any, parsed: Any, kwargs: dict[str, Any]) -> Any:
        """A ``with_raw_response``/``with_streaming_response`` reply: recorded from its
        parsed form; a stream is wrapped where the caller's ``parse()`` will find it."""
        if not kwargs.get("stream"):
            self.complete(call, parsed)
            return raw
        is_async = hasattr(parsed, "__aiter__")
        state = self.stream_state(call)
        wrapped = AsyncStream(parsed, state) if is_async else SyncStream(parsed, state)
        cache = getattr(raw, "_parsed_by_type", None)
        if isinstance(cache, dict) and getattr(raw, "_cast_to", None) is not None:
            cache[raw._cast_to] = wrapped  # openai's parse() cache, keyed by the default type
        else:
            state.done = True
            policy_failure(self.pm, "a raw streamed response of this openai version")
        return raw


def output_of(endpoint: Endpoint, response: Any) -> Any:
    """What is hashed: the reply text for one text choice, else the JSON list."""
    if endpoint.kind == "embeddings":
        return [plain(d.embedding) for d in response.data]
    choices = sorted(response.choices, key=lambda c: c.index)
    if endpoint.kind == "text_completion":
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
    for key in tokens:  # the Responses API names them so already
        if tokens[key] is None:
            tokens[key] = getattr(usage, key, None)
    rec.set_usage(**{k: v for k, v in tokens.items() if isinstance(v, int)})


def note_fallback(
    rec: Recording, requested: str, used: str, served: str, failures: list[str]
) -> None:
    if failures:
        rec.set_fallback(requested, served, "retried after " + "; ".join(failures))
    elif not same_model(requested, served):
        rec.set_fallback(requested, served, "the endpoint answered with another model")


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
    """Record every ``chat.completions``, ``completions``, ``embeddings`` and ``responses`` call of
    ``client`` (an ``openai.OpenAI`` or ``openai.AsyncOpenAI``) into ``pm``.

    ``provider`` defaults to ``openai`` for api.openai.com and to the endpoint's host
    otherwise. Clients made from it with ``with_options``/``copy`` are instrumented too.
    Returns ``client`` itself.
    """
    oa = _openai()
    instrument_with(
        Instrumentation,
        client,
        pm,
        (oa.OpenAI, oa.AsyncOpenAI),
        ("openai", "openai.com"),
        ENDPOINTS,
        instrument,
        provider=provider,
        model_version=model_version,
        fallback_models=fallback_models,
        tags=tags,
    )
    return client


def instrument_with(
    kind: type[K],
    client: Any,
    pm: CaptureTarget,
    classes: tuple[type, type],
    vendor: tuple[str, str],
    endpoints: Sequence[Endpoint],
    again: Callable[..., Any],
    *,
    provider: str | None,
    model_version: str | None,
    fallback_models: Sequence[str],
    tags: dict[str, str] | None,
) -> K | None:
    """The shared body of the SDKs' ``instrument``: check the client is one of
    ``classes`` (sync, async), name its provider (``vendor``: the name for the vendor's
    own domain), wrap ``endpoints`` and have ``again`` instrument copies of the client.
    ``None`` when the client is already instrumented."""
    sync, async_ = classes
    name, domain = vendor
    if not isinstance(client, sync | async_):
        raise ConfigError(
            f"instrument(client): client must be an {name}.{sync.__name__} or "
            f"{name}.{async_.__name__}, not {type(client).__name__}"
        )
    if isinstance(vars(client).get(_ATTR), Instrumentation):
        return None
    provider, endpoint = endpoint_of(client, provider, domain, name)
    options: dict[str, Any] = {
        "provider": provider,
        "model_version": model_version,
        "fallback_models": fallback_models,
        "tags": tags,
    }
    inst = kind(pm, endpoint=endpoint, **options)
    patch(
        client, inst, endpoints, isinstance(client, async_), lambda copy: again(copy, pm, **options)
    )
    return inst


def endpoint_of(client: Any, provider: str | None, domain: str, name: str) -> tuple[str, str]:
    """(provider, endpoint URL) of an SDK client: ``name`` for the vendor's own ``domain``,
    else the host:port behind ``base_url``."""
    url = urlsplit(str(client.base_url))
    host = url.hostname or "unknown"
    port = f":{url.port}" if url.port else ""
    if provider is None:
        provider = name if host.endswith(domain) else host + port
    return provider, f"{url.scheme}://{host}{port}{url.path}"


def patch(
    client: Any,
    inst: Instrumentation,
    endpoints: Sequence[Endpoint],
    is_async: bool,
    again: Any,
) -> None:
    """Wrap each endpoint's ``create`` and the client's ``with_options``/``copy`` (whose
    results ``again`` instruments)."""
    for ep in endpoints:
        resource: Any = client
        for part in ep.path:
            resource = getattr(resource, part, None)
        if resource is None:  # an SDK version without this API
            continue
        create = resource.create
        inst.originals.append((resource, "create", vars(resource).get("create")))
        resource.create = _wrapper(inst, create, ep, is_async)
        for name in _RAW_WRAPPERS:  # cached views made before: rebuilt over our create
            vars(resource).pop(name, None)
    for name in ("with_options", "copy"):
        original = getattr(client, name, None)
        if original is None:
            continue
        inst.originals.append((client, name, vars(client).get(name)))
        setattr(client, name, _copier(original, again))
    setattr(client, _ATTR, inst)


def _wrapper(inst: Instrumentation, create: Any, endpoint: Endpoint, is_async: bool) -> Any:
    if is_async:

        @functools.wraps(create)
        async def acreate(**kwargs: Any) -> Any:
            return await inst.call_async(create, endpoint, kwargs)

        return acreate

    @functools.wraps(create)
    def screate(**kwargs: Any) -> Any:
        return inst.call_sync(create, endpoint, kwargs)

    return screate


def _copier(original: Any, again: Any) -> Any:
    @functools.wraps(original)
    def copy(*args: Any, **kwargs: Any) -> Any:
        return again(original(*args, **kwargs))

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
        for view in _RAW_WRAPPERS:
            vars(owner).pop(view, None)
