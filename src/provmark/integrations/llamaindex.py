"""LlamaIndex: records from LlamaIndex's instrumentation (its dispatcher's spans and events).

    from provmark.integrations import llamaindex as pm_llamaindex

    pm_llamaindex.instrument(pm)                  # the root dispatcher: everything
    answer = query_engine.query("What did the memo say?")
    pm.verify(str(answer))                        # the query's record; parents: LLM calls

Every LLM chat and completion (``LLMChatStartEvent``/``LLMCompletionStartEvent`` to their
end events, streams included) is a record: the model (the LLM's ``model``/``model_name``,
else its class), ``provider`` ``llama_index:<LLM class>``, the messages or prompt as
input, the LLM's generation settings as params, the reply. An LLM method calling another
(``chat`` over ``complete``) makes one record. Root spans (a query, an agent run) and
spans of agents and workflows are records of operation ``agent`` or ``chain`` whose
``parents`` are the records made inside them.
"""

from __future__ import annotations

import importlib.metadata
import threading
from typing import Any

from ..capture.model import Model
from .common import CaptureTarget, clean_params, plain, policy_failure, require
from .runs import RunTree, jsonable

MINIMUM, BELOW = "0.12", "0.15"
GENERATION_SETTINGS = frozenset(
    {
        "temperature",
        "top_p",
        "top_k",
        "max_tokens",
        "max_new_tokens",
        "num_output",
        "seed",
        "stop",
        "presence_penalty",
        "frequency_penalty",
        "repetition_penalty",
        "context_window",
    }
)
_LLM_EVENTS = ("LLMChatStartEvent", "LLMCompletionStartEvent")
_LLM_ENDS = ("LLMChatEndEvent", "LLMCompletionEndEvent")


def _instrumentation() -> Any:
    return require(
        "llama_index.core.instrumentation",
        extra="llamaindex",
        package="llama-index-core",
        minimum=MINIMUM,
        below=BELOW,
    )


def is_agent(instance: Any) -> bool:
    name = type(instance).__name__
    return "Agent" in name or "Workflow" in name


def _is_llm(instance: Any) -> bool:
    from llama_index.core.base.llms.base import BaseLLM

    return isinstance(instance, BaseLLM)


def message_dict(message: Any) -> dict[str, Any]:
    role = getattr(message, "role", "user")
    out: dict[str, Any] = {"role": str(getattr(role, "value", role))}
    out["content"] = jsonable(getattr(message, "content", None) or "")
    calls = (getattr(message, "additional_kwargs", None) or {}).get("tool_calls")
    if calls:
        out["tool_calls"] = jsonable(calls)
    return out


_QUESTION_ARGS = ("user_msg", "str_or_query_bundle", "query_str", "message", "query", "input")


def span_input(arguments: dict[str, Any]) -> Any:
    """A span's input: the question of a query or agent run, else its arguments."""
    extra = arguments.get("kwargs")
    if isinstance(extra, dict):  # run(**kwargs): user_msg=... is in there
        arguments = {**{k: v for k, v in arguments.items() if k != "kwargs"}, **extra}
    for event in (arguments.get("start_event"), arguments.get("ev")):  # workflows
        question = getattr(event, "user_msg", None)
        if question is not None:
            arguments = {"user_msg": question}
    for key in _QUESTION_ARGS:
        value = arguments.get(key)
        if value is not None:
            text = getattr(value, "query_str", value)  # a QueryBundle
            return text if isinstance(text, str) else jsonable(text)
    given = {k: v for k, v in arguments.items() if k != "self" and v is not None}
    return next(iter(given.values())) if len(given) == 1 else given


def span_output(result: Any) -> Any:
    """A span's result: a query response's text, an agent's reply text, or JSON."""
    if isinstance(result, str):
        return str(result)
    for attr in ("response", "message"):
        value = getattr(result, attr, None)
        if isinstance(value, str):
            return value
        content = getattr(value, "content", None)
        if isinstance(content, str):
            return content
    return jsonable(result)


class Recorder:
    """The span and event handlers' shared state (see :func:`instrument`)."""

    def __init__(self, pm: CaptureTarget, tags: dict[str, str] | None) -> None:
        self.pm = pm
        self.tags = dict(tags or {})
        self.tree = RunTree(pm)
        self.instances: dict[str, Any] = {}
        self.llm_open: dict[str, Any] = {}  # span id -> the LLM, while its record is open
        self.lock = threading.Lock()
        self.handlers: tuple[Any, Any, Any] | None = None  # (dispatcher, span, event)
        try:
            self.version: str | None = importlib.metadata.version("llama-index-core")
        except importlib.metadata.PackageNotFoundError:
            self.version = None

    @property
    def last_record_id(self) -> str | None:
        return self.tree.last_record_id

    # ------------------------------------------------------------ spans
    def new_span(self, span_id: str, bound_args: Any, instance: Any, parent: str | None) -> None:
        rec = None
        root = parent is None or not self.tree.is_open(parent)
        if (root and not _is_llm(instance)) or (instance is not None and is_agent(instance)):
            name = type(instance).__name__ if instance is not None else span_id.split("-")[0]
            inp = span_input(bound_args.arguments)
            rec = self.pm.record(
                model=Model(name, provider="llama_index", version=self.version),
                input=jsonable(inp),
                operation="agent" if is_agent(instance) else "chain",
                tags={**self.tags, "llama_index.span_id": span_id},
            )
        with self.lock:
            self.instances[span_id] = instance
        self.tree.open(span_id, parent, rec)

    def exit_span(self, span_id: str, result: Any, error: BaseException | None) -> None:
        with self.lock:
            self.instances.pop(span_id, None)
        if error is None and callable(getattr(result, "add_done_callback", None)):
            # a workflow's run() returns a handler (a future) at once: the run ends with it
            result.add_done_callback(lambda done: self._future_done(span_id, done))
            return
        output = span_output(result) if error is None else None
        self.tree.close(span_id, output=output, error=error, what="a LlamaIndex span")

    def _future_done(self, span_id: str, done: Any) -> None:
        try:
            result, error = done.result(), None
        except BaseException as exc:  # cancelled or failed: an error record
            result, error = None, exc
        self.exit_span(span_id, result, error)

    # ------------------------------------------------------------ LLM events
    def _inside_llm_record(self, span_id: str) -> bool:
        with self.tree.lock, self.lock:
            current: str | None = span_id
            while current is not None:
                if current in self.llm_open:
                    return True
                current = self.tree.parents.get(current)
        return False

    def _twin_open(self, span_id: str, instance: Any) -> bool:
        """An LLM record is open for the same LLM under the same parent span (``astream_chat``
        running ``stream_chat`` in a worker thread, out of the span's context)."""
        with self.tree.lock, self.lock:
            parent = self.tree.parents.get(span_id)
            return any(
                llm is instance and self.tree.parents.get(other) == parent
                for other, llm in self.llm_open.items()
            )

    def llm_start(self, event: Any) -> None:
        span_id = event.span_id
        if not span_id or self._inside_llm_record(span_id):
            return
        with self.lock:
            instance = self.instances.get(span_id)
        twin = instance is not None and self._twin_open(span_id, instance)
        with self.lock:
            self.llm_open[span_id] = instance  # a twin too: LLM calls below it are covered
        if twin:
            return
        meta = dict(event.model_dict or {})
        name = getattr(instance, "model", None) or meta.get("model_name")
        cls = type(instance).__name__ if instance is not None else meta.get("class_name", "LLM")
        if not isinstance(name, str) or not name or name == "unknown":
            name = cls
        settings = {k: getattr(instance, k, None) for k in GENERATION_SETTINGS}
        settings.update(plain(event.additional_kwargs or {}))
        if type(event).__name__ == "LLMChatStartEvent":
            inp: Any = [message_dict(m) for m in event.messages]
            operation = "chat"
        else:
            inp, operation = event.prompt, "text_completion"
        rec = self.pm.record(
            model=Model(name, provider=f"llama_index:{cls}"),
            input=inp,
            params=clean_params(settings, frozenset()),
            operation=operation,
            tags={**self.tags, "llama_index.span_id": span_id},
        )
        self.tree.open(span_id + "#llm", span_id, rec)

    def llm_end(self, event: Any) -> None:
        key = event.span_id + "#llm"
        with self.lock:
            self.llm_open.pop(event.span_id, None)
        rec = self.tree.recording(key)
        if rec is None:
            return
        response = event.response
        raw = getattr(response, "raw", None)
        usage = getattr(raw, "usage", None) if raw is not None else None
        if isinstance(raw, dict):
            usage = raw.get("usage")
        tokens = plain(usage) if usage is not None else {}
        if isinstance(tokens, dict):
            rec.set_usage(**{
                k: tokens[v] for k, v in (("input_tokens", "prompt_tokens"),
                                          ("output_tokens", "completion_tokens"))
                if isinstance(tokens.get(v), int)
            })  # fmt: skip
        if response is None:
            output: Any = None
        elif type(event).__name__ == "LLMChatEndEvent":
            message = response.message
            output = message_dict(message)
            if isinstance(message.content, str) and "tool_calls" not in output:
                output = message.content
        else:
            output = response.text
        self.tree.close(key, output=output, what="a LlamaIndex LLM call")

    def handle(self, event: Any) -> None:
        kind = type(event).__name__
        try:
            if kind in _LLM_EVENTS:
                self.llm_start(event)
            elif kind in _LLM_ENDS:
                self.llm_end(event)
        except Exception as exc:
            policy_failure(self.pm, f"recording a LlamaIndex {kind}", exc)


def instrument(
    pm: CaptureTarget, *, dispatcher: Any = None, tags: dict[str, str] | None = None
) -> Recorder:
    """Record LLM calls, queries and agent runs seen by ``dispatcher`` (LlamaIndex's root
    dispatcher by default, which sees everything) into ``pm``. Returns the
    :class:`Recorder` (``.last_record_id``); :func:`uninstrument` removes it."""
    inst = _instrumentation()
    from llama_index.core.instrumentation.event_handlers import BaseEventHandler
    from llama_index.core.instrumentation.span_handlers import BaseSpanHandler

    recorder = Recorder(pm, tags)

    class SpanHandler(BaseSpanHandler[Any]):
        def new_span(
            self,
            id_: str,
            bound_args: Any,
            instance: Any = None,
            parent_span_id: str | None = None,
            tags: Any = None,
            **kw: Any,
        ) -> None:
            recorder.new_span(id_, bound_args, instance, parent_span_id)

        def prepare_to_exit_span(self, id_: str, bound_args: Any, instance: Any = None,
                                 result: Any = None, **kw: Any) -> None:  # fmt: skip
            recorder.exit_span(id_, result, None)

        def prepare_to_drop_span(self, id_: str, bound_args: Any, instance: Any = None,
                                 err: BaseException | None = None, **kw: Any) -> None:  # fmt: skip
            recorder.exit_span(id_, None, err)

    class EventHandler(BaseEventHandler):
        @classmethod
        def class_name(cls) -> str:
            return "ProvmarkEventHandler"

        def handle(self, event: Any, **kw: Any) -> None:
            recorder.handle(event)

    target = dispatcher if dispatcher is not None else inst.get_dispatcher()
    span_handler, event_handler = SpanHandler(), EventHandler()
    target.add_span_handler(span_handler)
    target.add_event_handler(event_handler)
    recorder.handlers = (target, span_handler, event_handler)
    return recorder


def uninstrument(recorder: Recorder) -> None:
    """Remove :func:`instrument`'s handlers from their dispatcher."""
    if recorder.handlers is None:
        return
    target, span_handler, event_handler = recorder.handlers
    recorder.handlers = None
    target.span_handlers = [h for h in target.span_handlers if h is not span_handler]
    target.event_handlers = [h for h in target.event_handlers if h is not event_handler]
