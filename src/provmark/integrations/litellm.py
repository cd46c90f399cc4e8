"""LiteLLM: a callback that makes a record of every ``completion``/``acompletion``/
``embedding``/``text_completion`` call, whatever provider LiteLLM routes it to.

    import litellm
    from provmark.integrations.litellm import ProvmarkCallback

    callback = ProvmarkCallback(pm)
    callback.install()                      # or: with callback.installed(): ...
    reply = litellm.completion(model="openai/acme-chat", messages=[...])
    callback.wait(1)                        # records are written on LiteLLM's logging thread
    pm.verify(reply.choices[0].message.content)

LiteLLM runs its callbacks after it returns the reply (sync calls: on its logging
thread), so a record appears just after the call, and a capture failure cannot hold the
reply back: under ``strict`` it is counted and raised inside LiteLLM's callback, which
logs it. Streams are recorded once, from LiteLLM's complete streaming response. Every
attempt is recorded: with ``fallbacks=[...]`` the failed attempt is an error record and
the answer is a record of the model that answered; a Router deployment answering for a
model group says so in ``fallback`` when the group is another name.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from ..capture.model import Model
from .common import CaptureTarget, clean_params, plain, policy_failure, require, same_model
from .openai import _SKIP, note_usage, output_of
from .openai_calls import ENDPOINTS, Endpoint

MINIMUM, BELOW = "1.50", "2"
_KINDS = {
    "completion": ENDPOINTS[0],
    "acompletion": ENDPOINTS[0],
    "text_completion": ENDPOINTS[1],
    "atext_completion": ENDPOINTS[1],
    "embedding": ENDPOINTS[2],
    "aembedding": ENDPOINTS[2],
}


def _litellm() -> Any:
    return require(
        "litellm.integrations.custom_logger",
        extra="litellm",
        package="litellm",
        minimum=MINIMUM,
        below=BELOW,
    )


def _base() -> type:
    return _litellm().CustomLogger  # type: ignore[no-any-return]


class _Recorder:
    """What the callback does; kept apart from LiteLLM's ``CustomLogger`` base class so
    that ``import provmark.integrations.litellm`` does not import LiteLLM."""

    def __init__(self, pm: CaptureTarget, tags: dict[str, str] | None) -> None:
        self.pm = pm
        self.tags = dict(tags or {})
        self.record_ids: list[str] = []
        self._seen: set[str] = set()  # grows by one short key per call
        self._done = threading.Condition()

    def wait(self, count: int, timeout: float = 10.0) -> bool:
        """Block until at least ``count`` records were written by this callback."""
        with self._done:
            return self._done.wait_for(lambda: len(self.record_ids) >= count, timeout)

    def _first(self, kwargs: dict[str, Any], failed: bool) -> bool:
        # fallback attempts share a call id: one record per (call, model, outcome)
        call_id = f"{kwargs.get('litellm_call_id') or id(kwargs)} {kwargs.get('model')} {failed}"
        with self._done:
            if call_id in self._seen:
                return False  # LiteLLM may call both the sync and the async hook
            self._seen.add(call_id)
            return True

    def record(
        self, kwargs: dict[str, Any], response: Any, start: Any, error: BaseException | None
    ) -> None:
        if not self._first(kwargs, error is not None):
            return
        try:
            record_id = self._record(kwargs, response, start, error)
        except Exception as exc:
            policy_failure(self.pm, "recording a LiteLLM call", exc)
            return
        if record_id:
            with self._done:
                self.record_ids.append(record_id)
                self._done.notify_all()

    def _record(
        self, kwargs: dict[str, Any], response: Any, start: Any, error: BaseException | None
    ) -> str | None:
        endpoint: Endpoint = _KINDS.get(str(kwargs.get("call_type")), ENDPOINTS[0])
        logged = kwargs.get("standard_logging_object") or {}
        if kwargs.get("stream") and error is None:
            response = kwargs.get("complete_streaming_response") or response
        served = getattr(response, "model", None)
        name = str(served or kwargs.get("model") or "unknown")
        provider = kwargs.get("custom_llm_provider") or logged.get("custom_llm_provider")
        inp = kwargs.get("messages") if endpoint.kind == "chat" else kwargs.get("input")
        params = clean_params(logged.get("model_parameters") or kwargs.get("optional_params") or {},
                              _SKIP | {"extra_body"})  # fmt: skip
        rec = self.pm.record(
            model=Model(name, provider=str(provider) if provider else None),
            input=plain(inp),
            params=params,
            operation=endpoint.operation,
            tags=self.tags or None,
        )
        rec.__enter__()
        if isinstance(start, datetime):
            rec.outcome.started_ns = int(start.timestamp() * 1e9)
        extra = rec.outcome.extra
        extra["litellm_call_id"] = str(kwargs.get("litellm_call_id") or "")
        if logged.get("api_base"):
            extra["endpoint"] = logged["api_base"]
        group = logged.get("model_group")
        if group and served and not same_model(str(group), str(served)):
            rec.set_fallback(
                str(group), str(served), "the LiteLLM router answered with another model"
            )
        if error is not None:
            rec.__exit__(type(error), error, error.__traceback__)
            return rec.record_id
        extra["served_model"] = name
        if getattr(response, "id", None):
            extra["response_id"] = response.id
        if getattr(response, "system_fingerprint", None):
            extra["system_fingerprint"] = response.system_fingerprint
        note_usage(rec, getattr(response, "usage", None))
        if endpoint.kind == "embeddings":  # LiteLLM's data items are dicts
            rec.set_output([plain(d["embedding"] if isinstance(d, dict) else d.embedding)
                            for d in response.data])  # fmt: skip
        else:
            rec.set_output(output_of(endpoint, response))
        rec.__exit__(None, None, None)
        return rec.record_id


def ProvmarkCallback(pm: CaptureTarget, *, tags: dict[str, str] | None = None) -> Any:
    """A LiteLLM ``CustomLogger`` recording every call into ``pm``: ``.install()`` (or
    ``with .installed():``, or put it in ``litellm.callbacks`` yourself); ``.uninstall()``
    removes it from every list LiteLLM copied it to. ``.record_ids`` lists the records
    made; ``.wait(n)`` blocks until ``n`` were written."""
    base = _base()

    class Callback(base, _Recorder):  # type: ignore[valid-type, misc]
        def __init__(self) -> None:
            base.__init__(self)  # type: ignore[misc]
            _Recorder.__init__(self, pm, tags)

        def log_success_event(
            self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
        ) -> None:
            self.record(kwargs, response_obj, start_time, None)

        def log_failure_event(
            self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
        ) -> None:
            self.record(kwargs, response_obj, start_time, _exception(kwargs))

        async def async_log_success_event(
            self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
        ) -> None:
            self.record(kwargs, response_obj, start_time, None)

        async def async_log_failure_event(
            self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
        ) -> None:
            self.record(kwargs, response_obj, start_time, _exception(kwargs))

        @contextlib.contextmanager
        def installed(self) -> Iterator[Any]:
            """``litellm.callbacks`` holds this callback inside the block."""
            self.install()
            try:
                yield self
            finally:
                self.uninstall()

        def install(self) -> None:
            """Add to ``litellm.callbacks`` (through LiteLLM's callback manager)."""
            import litellm

            litellm.logging_callback_manager.add_litellm_callback(self)

        def uninstall(self) -> None:
            """Remove from every list LiteLLM copied its callbacks to."""
            import litellm

            litellm.logging_callback_manager.remove_callback_from_all_lists(self)

    return Callback()


def _exception(kwargs: dict[str, Any]) -> BaseException:
    exc = kwargs.get("exception")
    if isinstance(exc, BaseException):
        return exc
    return RuntimeError(str(exc or kwargs.get("traceback_exception") or "LiteLLM call failed"))
