"""Turning a capture outcome into an unsigned record draft, with no store needed.

Shared by the embedded ``Provmark`` and ``RemoteProvmark`` (``provmark.open("http://...")``):
both capture the same way; only where the draft goes differs (the local writer, or a
batch POST to a server that signs and logs it).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import itertools
import json
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..canonical import Fragment, to_json_value
from ..errors import ConfigError, RecordError
from ..jsonlimits import check_json
from ..record import (
    MAX_EXTRA_BYTES,
    MAX_PARAMS_BYTES,
    MAX_SNAPSHOT_CHARS,
    RecordIds,
    check_size,
    check_tags,
)
from .core import Outcome, Spec
from .draft import ABSENT, Draft, Fingerprint
from .environment import DEFAULT_PACKAGES, probe
from .hashing import Digest, Encoders, digest_output, operation_for
from .model import HashCache, Model, as_model

_INSTANCES = itertools.count()


@functools.lru_cache(maxsize=4)
def _second_text(secs: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))


def format_ns(ns: int) -> str:
    """RFC 3339 UTC with microseconds from Unix nanoseconds."""
    secs, rem = divmod(ns, 1_000_000_000)
    return f"{_second_text(secs)}.{rem // 1000:06d}Z"  # strftime once per second


class DraftBuilder:
    """Capture specs, the acting-for user, the environment context and draft building."""

    def __init__(
        self,
        *,
        actor: Mapping[str, str] | None = None,
        packages: Sequence[str] = DEFAULT_PACKAGES,
        config: Mapping[str, Any] | None = None,
        encoders: Encoders | None = None,
        hash_cache: HashCache | None = None,
        provider: str | None = None,
    ) -> None:
        self.encoders = encoders or Encoders()
        # SB 942 provider name for models that name none (disclosure.config)
        self.provider = provider or os.environ.get("PROVMARK_PROVIDER") or None
        self.hash_cache = hash_cache or HashCache()
        self._ids = RecordIds()
        self._packages = tuple(packages)
        self._config = dict(config or {})
        self._context: Fragment | None = None
        self._context_lock = threading.Lock()
        self.actor = {
            k: v
            for k, v in {
                "service": os.environ.get("PROVMARK_SERVICE"),
                "region": os.environ.get("PROVMARK_REGION"),
                **(actor or {}),
            }.items()
            if v
        }
        self._acting_for: contextvars.ContextVar[str | None] = contextvars.ContextVar(
            f"provmark_acting_for_{next(_INSTANCES)}", default=None
        )

    def spec(self, *, model: Model | str | dict[str, Any], **options: Any) -> Spec:
        try:
            spec = Spec(model=as_model(model), **options)
        except TypeError as exc:
            raise ConfigError(f"capture: {exc}") from None
        if self.provider and spec.model.provider is None:
            spec.model = dataclasses.replace(spec.model, provider=self.provider, _resolved={})
        identity = spec.model.identity(self.hash_cache)  # hash weights now, not on first call
        try:
            check_json(identity, "model")  # a NUL in a model name would stop PostgreSQL
        except RecordError as exc:
            raise ConfigError(f"capture: {exc}") from None
        if spec.tags:
            check_tags(dict(spec.tags))
        return spec

    @contextlib.contextmanager
    def acting_for(self, user_id: str) -> Iterator[None]:
        token = self._acting_for.set(user_id)
        try:
            yield
        finally:
            self._acting_for.reset(token)

    def context(self) -> Fragment:
        if self._context is None:
            with self._context_lock:
                if self._context is None:
                    self._context = Fragment(probe(self._packages, config=self._config))
        return self._context

    def build(self, o: Outcome, *, fingerprint: bool = False) -> Draft:
        """The unsigned draft of one outcome (the input snapshot still raw, see ``finish``);
        with ``fingerprint``, the output to fingerprint rides along (not of an error, nor
        of a spec with ``fingerprint=False``; a stream's by its text)."""
        spec = o.spec
        now_ns = time.time_ns()
        draft: dict[str, Any] = {
            "record_id": o.record_id or self._ids.new(now_ns),
            "schema_version": "1",
            "started_at": format_ns(o.started_ns),
            "generated_at": format_ns(now_ns),
            "operation": spec.operation or "text_completion",
            "status": "ok" if o.error is None else "error",
            "model": spec.model.fragment(self.hash_cache),
            "context": self.context(),
        }
        if o.params:
            check_json(o.params, "params")  # the I-JSON limits of the door (2**70 is refused)
            raw = check_size("params", o.params, MAX_PARAMS_BYTES)
            draft["params"] = Fragment(o.params, raw)  # encoded once, spliced when signed
        inp, raw = self._input(o)
        if inp:
            draft["input"] = inp
        if o.error is not None:
            draft["error"] = {"type": type(o.error).__qualname__, "message": str(o.error)[:2048]}
        digest = o.digest
        if digest is None and o.error is None:
            digest = digest_output(o.output, self.encoders)
        if digest is not None:
            out: dict[str, Any] = {"sha256": digest.sha256, "size": digest.size}
            media = spec.media_type or o.extra.pop("_media_type", None) or digest.media_type
            if media:
                out["media_type"] = media
            if spec.operation is None:
                draft["operation"] = operation_for(media)
            if isinstance(o.output, os.PathLike):
                out["uri"] = Path(o.output).resolve().as_uri()
            draft["output"] = out
        actor = dict(self.actor)
        if spec.actor:
            actor.update(spec.actor)
        acting = self._acting_for.get()
        if acting:
            actor["user_id"] = acting
        if actor:
            check_json(actor, "actor")
            draft["actor"] = actor
        parents = [*(spec.parents or ()), *o.parents]
        if parents:
            draft["parents"] = [str(p) for p in parents]
            check_json(draft["parents"], "parents")
        tags = {**(spec.tags or {}), **o.tags}
        if tags:
            check_tags(tags)
            check_json(tags, "tags")
            draft["tags"] = tags
        extra = {**(spec.extra or {}), **o.extra}
        if extra:
            check_json(extra, "extra")
            check_size("extra", extra, MAX_EXTRA_BYTES)
            draft["extra"] = extra
        if o.usage:
            check_json(o.usage, "usage")
        draft["usage"] = {"latency_ms": round((now_ns - o.started_ns) / 1e6, 3), **o.usage}
        if o.fallback:
            check_json(o.fallback, "fallback")
            draft["fallback"] = o.fallback
        prints = None
        if fingerprint and o.error is None and spec.fingerprint is not False:
            output = o.output if o.output is not None else getattr(o.digest, "text", None)
            if output is not None:
                prints = Fingerprint(output, (draft.get("output") or {}).get("media_type"))
        return Draft(draft, raw, prints)

    def _input(self, o: Outcome) -> tuple[dict[str, Any], Any]:
        """The record's ``input`` and the raw value its snapshot is rendered from."""
        inp: dict[str, Any] = {}
        raw: Any = ABSENT
        if o.input is not None:
            d: Digest = digest_output(o.input, self.encoders)
            inp["sha256"] = d.sha256
            if d.media_type:
                inp["media_type"] = d.media_type
            if o.spec.snapshot and isinstance(o.input, str | dict | list):
                raw = o.input  # turned into text off the caller's thread (finish, protect)
        seed = o.seed if o.seed is not None else o.params.get("seed")
        if seed is not None:
            inp["seed"] = str(seed)
        if o.datasets:
            inp["datasets"] = [dict(d) for d in o.datasets]
        return inp, raw


def snapshot_text(raw: Any) -> str:
    """The raw input as text: a string as it is, anything else as sorted JSON."""
    return raw if isinstance(raw, str) else json_text(raw)


def render_snapshot(draft: Draft) -> dict[str, Any]:
    """The record with its raw input rendered as the (truncated) snapshot, unredacted."""
    record = draft.record
    if draft.has_raw_input:
        record.setdefault("input", {})["snapshot"] = snapshot_text(draft.raw_input)[
            :MAX_SNAPSHOT_CHARS
        ]
        draft.raw_input = ABSENT
    return record


def finish(draft: Draft, redactor: Any = None) -> dict[str, Any]:
    """The record to send: the raw input rendered as the (redacted, truncated) snapshot,
    the error message redacted."""
    record = draft.record
    if draft.has_raw_input:
        text = snapshot_text(draft.raw_input)
        if redactor is not None:
            text = redactor.redact_text(text).text
        record.setdefault("input", {})["snapshot"] = text[:MAX_SNAPSHOT_CHARS]
        draft.raw_input = ABSENT
    if redactor is not None and "error" in record and record["error"].get("message"):
        record["error"]["message"] = redactor.redact_text(record["error"]["message"]).text
    return record


def json_text(value: Any) -> str:
    return json.dumps(to_json_value(value), ensure_ascii=False, sort_keys=True, default=str)
