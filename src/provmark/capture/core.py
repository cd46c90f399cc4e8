"""``pm.capture``: decorator and context manager for every kind of callable.

Sync functions, ``async def``, generators and async generators are wrapped; a
streamed output is hashed chunk by chunk and its record is written when the
stream ends, fails or is closed early. Failed generations are recorded with
the error type. The wrapped callable's positional-or-keyword arguments are the
*input*; its keyword-only arguments (with defaults applied) are the *params*.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, cast

from ..errors import CaptureError, ProvmarkError
from .hashing import Digest, StreamHasher

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Spec:
    """What a capture site declares once (per decorator or ``record()`` call)."""

    model: Any  # provmark.Model
    operation: str | None = None  # None: text_completion, or image_generation for images
    input_arg: str | None = None
    actor: Mapping[str, str] | None = None
    tags: Mapping[str, str] | None = None
    parents: Sequence[str] | None = None
    media_type: str | None = None
    extra: Mapping[str, Any] | None = None
    snapshot: bool = True
    stream: bool | None = None  # None: detect generators
    fingerprint: bool | None = None  # soft-binding fingerprints; None: by media type


@dataclass
class Outcome:
    """What happened in one call; the recorder turns it into a record."""

    spec: Spec
    started_ns: int
    input: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    output: Any = None
    digest: Digest | None = None
    error: BaseException | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    parents: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    fallback: dict[str, str] | None = None
    seed: Any = None
    datasets: list[dict[str, str]] = field(default_factory=list)
    record_id: str | None = None  # given in advance (a span that names its record while open)


class Recorder(Protocol):
    def emit(self, outcome: Outcome) -> str: ...


def split_arguments(
    sig: inspect.Signature | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    input_arg: str | None,
) -> tuple[Any, dict[str, Any]]:
    """(input, params) of one call; see the module doc."""
    if sig is None:
        return (args[0] if len(args) == 1 and not kwargs else {"args": list(args), **kwargs}), {}
    try:
        bound = sig.bind(*args, **kwargs)
    except TypeError:
        return {"args": list(args), **kwargs}, {}
    bound.apply_defaults()
    inputs: dict[str, Any] = {}
    params: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        param = sig.parameters[name]
        if name in ("self", "cls") and param.kind is param.POSITIONAL_OR_KEYWORD:
            continue
        if param.kind is param.KEYWORD_ONLY:
            params[name] = value
        elif param.kind is param.VAR_KEYWORD:
            params.update(value)
        elif param.kind is param.VAR_POSITIONAL:
            if value:
                inputs[name] = list(value)
        else:
            inputs[name] = value
    if input_arg is not None:
        if input_arg not in bound.arguments:
            raise CaptureError(f"input_arg {input_arg!r} is not an argument of the function")
        return bound.arguments[input_arg], params
    if len(inputs) == 1:
        return next(iter(inputs.values())), params
    return inputs, params


class ArgumentSplitter:
    """:func:`split_arguments` with a fast path for plain signatures (no ``*args``/``**kw``),
    which skips ``Signature.bind`` (the costliest step of a capture)."""

    def __init__(self, fn: Callable[..., Any], input_arg: str | None) -> None:
        try:
            self.sig: inspect.Signature | None = inspect.signature(fn)
        except (TypeError, ValueError):
            self.sig = None
        self.input_arg = input_arg
        self.fast = False
        if self.sig is None or input_arg is not None:
            return
        params = list(self.sig.parameters.values())
        if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
            return
        self.positional = [p.name for p in params if p.kind is not p.KEYWORD_ONLY]
        self.skip_first = bool(self.positional) and self.positional[0] in ("self", "cls")
        self.required = {p.name for p in params if p.default is p.empty}
        self.defaults = {
            p.name: p.default
            for p in params
            if p.kind is p.KEYWORD_ONLY and p.default is not p.empty
        }
        self.keyword_only = {p.name for p in params if p.kind is p.KEYWORD_ONLY}
        self.names = set(self.positional) | self.keyword_only
        self.fast = len(self.positional) - self.skip_first == 1  # the common `fn(prompt, *, ...)`

    def __call__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        if self.fast:
            n = len(args) - self.skip_first
            if (
                n == 1
                and kwargs.keys() <= self.keyword_only
                and self.required <= (set(self.positional[: len(args)]) | kwargs.keys())
            ):
                return args[-1], {**self.defaults, **kwargs}
        return split_arguments(self.sig, args, kwargs, self.input_arg)


def wrap(recorder: Recorder, fn: F, spec: Spec) -> F:
    split = ArgumentSplitter(fn, spec.input_arg)

    def start(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Outcome:
        inp, params = split(args, kwargs)
        return Outcome(spec, time.time_ns(), input=inp, params=params)

    if inspect.isasyncgenfunction(fn):

        @functools.wraps(fn)
        async def agen_wrapper(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            outcome = start(args, kwargs)
            hasher = StreamHasher()
            try:
                async for chunk in fn(*args, **kwargs):
                    hasher.update(chunk)
                    yield chunk
            except BaseException as exc:
                outcome.digest = hasher.digest()
                outcome.error = exc
                recorder.emit(outcome)
                raise
            outcome.digest = hasher.digest()
            recorder.emit(outcome)

        return cast(F, agen_wrapper)

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
            outcome = start(args, kwargs)
            hasher = StreamHasher()
            try:
                for chunk in fn(*args, **kwargs):
                    hasher.update(chunk)
                    yield chunk
            except BaseException as exc:  # includes GeneratorExit: closed early
                outcome.digest = hasher.digest()
                outcome.error = exc
                recorder.emit(outcome)
                raise
            outcome.digest = hasher.digest()
            recorder.emit(outcome)

        return cast(F, gen_wrapper)

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            outcome = start(args, kwargs)
            try:
                result = await fn(*args, **kwargs)
            except Exception as exc:
                outcome.error = exc
                recorder.emit(outcome)
                raise
            outcome.output = result
            recorder.emit(outcome)
            return result

        return cast(F, async_wrapper)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        outcome = start(args, kwargs)
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            outcome.error = exc
            recorder.emit(outcome)
            raise
        outcome.output = result
        recorder.emit(outcome)
        return result

    return cast(F, wrapper)


class Recording:
    """The context-manager form::

    with pm.record(model=m, input=prompt, params={"temperature": 0.2}) as rec:
        text = generate(prompt)
        rec.set_output(text)
    rec.record_id  # the id of the record just written
    """

    def __init__(
        self,
        recorder: Recorder,
        spec: Spec,
        input: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        self._recorder = recorder
        self.outcome = Outcome(spec, time.time_ns(), input=input, params=dict(params or {}))
        self._has_output = False
        self._hasher: StreamHasher | None = None
        self.record_id: str | None = None

    def set_output(self, output: Any, *, media_type: str | None = None) -> None:
        self.outcome.output = output
        self._has_output = True
        if media_type:
            self.outcome.extra.setdefault("_media_type", media_type)

    def add_chunk(self, chunk: str | bytes) -> None:
        """Feed a streamed output piece by piece."""
        if self._hasher is None:
            self._hasher = StreamHasher()
        self._hasher.update(chunk)
        self._has_output = True

    def set_usage(self, **usage: Any) -> None:
        self.outcome.usage.update(usage)

    def set_fallback(
        self, requested_model: str, served_model: str, reason: str | None = None
    ) -> None:
        fb = {"requested_model": requested_model, "served_model": served_model}
        if reason:
            fb["reason"] = reason
        self.outcome.fallback = fb

    def add_dataset(self, uri: str, sha256: str | None = None) -> None:
        """A data set this generation used (``input.datasets``)."""
        entry = {"uri": uri}
        if sha256 is not None:
            entry["sha256"] = sha256
        self.outcome.datasets.append(entry)

    def add_parent(self, parent: str) -> None:
        self.outcome.parents.append(parent)

    def tag(self, **tags: str) -> None:
        self.outcome.tags.update(tags)

    def __enter__(self) -> Recording:
        self.outcome.started_ns = time.time_ns()
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if self._hasher is not None:
            self.outcome.digest = self._hasher.digest()
        if exc is not None:
            self.outcome.error = exc
        elif not self._has_output:
            self.outcome.error = CaptureError("no output was set on the recording")
        self.record_id = self._recorder.emit(self.outcome)

    async def __aenter__(self) -> Recording:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)


def not_captured(policy: str, exc: ProvmarkError, log: logging.Logger) -> str:
    """A capture that failed, under the client's ``policy``: ``strict`` raises a
    :class:`CaptureError`, ``best_effort`` logs it and returns ``""`` as the record id."""
    if policy == "strict":
        if isinstance(exc, CaptureError):
            raise exc
        raise CaptureError(f"provenance not captured: {exc}") from exc
    log.error("provmark: provenance not captured (best_effort): %s", exc)
    return ""
