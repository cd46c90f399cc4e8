"""LangChain: a callback handler that records every chat model and LLM call, and agent and
root chain runs as records whose parents are the model calls made inside them.

    from provmark.integrations.langchain import ProvmarkCallbackHandler

    handler = ProvmarkCallbackHandler(pm)
    answer = agent.invoke({"input": "..."}, config={"callbacks": [handler]})
    pm.verify(answer["output"])            # the agent run's record; its parents: the calls

Model calls: the model (``ls_model_name``, the invocation's ``model``/``model_name``, else
the model class), ``provider`` = ``ls_provider``, the messages (or prompt) as input, the
invocation parameters, the reply (text, or the message with its tool calls), token usage.
Chains: with ``chains="root"`` (the default) the outermost run of each invocation and
every run whose name says it is an agent (``AgentExecutor``, ``create_react_agent``'s
graph, a runnable named ``*agent*``) are records of operation ``agent`` or ``chain``;
``"all"`` records every chain, ``"none"`` none. Every record is tagged ``langchain.run_id``
and ``langchain.trace`` (the root run id).
"""

from __future__ import annotations

import importlib.metadata
from typing import Any
from uuid import UUID

from ..capture.core import Recording
from ..capture.model import Model
from ..errors import ConfigError
from .common import CaptureTarget, answered_by, clean_params, require, same_model
from .runs import RunTree, jsonable

MINIMUM, BELOW = "0.3", "2"
_SKIP = frozenset(
    {"_type", "model", "model_name", "model_id", "responses", "stream", "callbacks", "tags"}
)


def _callbacks() -> Any:
    return require(
        "langchain_core.callbacks",
        extra="langchain",
        package="langchain-core",
        minimum=MINIMUM,
        below=BELOW,
    )


def is_agent(name: str) -> bool:
    return "agent" in name.lower()


def message_dict(message: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"role": getattr(message, "type", "unknown")}
    out["content"] = jsonable(getattr(message, "content", ""))
    for key in ("tool_calls", "name", "tool_call_id"):
        value = getattr(message, key, None)
        if value:
            out[key] = jsonable(value)
    return out


def generation_output(response: Any) -> Any:
    """The reply: text for one text generation; else the list of messages/texts."""
    gens = [g for batch in response.generations for g in batch]
    outs: list[Any] = []
    for gen in gens:
        message = getattr(gen, "message", None)
        if message is None:
            outs.append(gen.text)
        elif isinstance(message.content, str) and not getattr(message, "tool_calls", None):
            outs.append(message.content)
        else:
            outs.append(message_dict(message))
    return outs[0] if len(outs) == 1 and isinstance(outs[0], str) else outs


def usage_of(response: Any) -> dict[str, int]:
    token = (response.llm_output or {}).get("token_usage") or {}
    usage = {
        "input_tokens": token.get("prompt_tokens"),
        "output_tokens": token.get("completion_tokens"),
    }
    for batch in response.generations:
        for gen in batch:
            meta = getattr(getattr(gen, "message", None), "usage_metadata", None) or {}
            for key in ("input_tokens", "output_tokens"):
                if usage[key] is None and isinstance(meta.get(key), int):
                    usage[key] = meta[key]
    return {k: v for k, v in usage.items() if isinstance(v, int)}


class _Handler:
    """The recording logic, apart from LangChain's base class (imported lazily)."""

    def __init__(self, pm: CaptureTarget, chains: str, tags: dict[str, str] | None) -> None:
        if chains not in ("root", "all", "none"):
            raise ConfigError(f"chains must be 'root', 'all' or 'none', not {chains!r}")
        self.pm = pm
        self.chains = chains
        self.tags = dict(tags or {})
        self.tree = RunTree(pm)
        self.roots: dict[str, str] = {}
        try:
            self.version: str | None = importlib.metadata.version("langchain-core")
        except importlib.metadata.PackageNotFoundError:
            self.version = None

    @property
    def last_record_id(self) -> str | None:
        return self.tree.last_record_id

    def _tags(self, run_id: UUID, parent: UUID | None) -> dict[str, str]:
        root = self.roots.get(str(parent), str(parent)) if parent else str(run_id)
        self.roots[str(run_id)] = root
        return {**self.tags, "langchain.run_id": str(run_id), "langchain.trace": root}

    def model_start(self, serialized: Any, inp: Any, kw: dict[str, Any], operation: str) -> None:
        run_id, parent = kw["run_id"], kw.get("parent_run_id")
        meta = kw.get("metadata") or {}
        invocation = kw.get("invocation_params") or {}
        name = (
            meta.get("ls_model_name")
            or invocation.get("model")
            or invocation.get("model_name")
            or invocation.get("model_id")
            or kw.get("name")
            or (serialized or {}).get("name")
            or invocation.get("_type")
            or "unknown"
        )
        provider = meta.get("ls_provider")
        params = clean_params(invocation, _SKIP)
        for key in ("ls_temperature", "ls_max_tokens"):
            if key in meta and key[3:] not in params and meta[key] is not None:
                params[key[3:]] = meta[key]
        rec = self.pm.record(
            model=Model(str(name), provider=str(provider) if provider else None),
            input=inp,
            params=params,
            operation=operation,
            tags=self._tags(run_id, parent),
        )
        self.tree.open(run_id, parent, rec)

    def model_end(self, response: Any, run_id: UUID) -> None:
        rec = self.tree.recording(run_id)
        if rec is not None:
            rec.set_usage(**usage_of(response))
            served = (response.llm_output or {}).get("model_name")
            asked = rec.outcome.spec.model.name
            if served and not same_model(asked, served):
                rec.set_fallback(asked, served, "the model answered as another model")
                answered_by(rec, Model(served, provider=rec.outcome.spec.model.provider))
        self.roots.pop(str(run_id), None)
        self.tree.close(run_id, output=generation_output(response), what="a LangChain model call")

    def chain_start(self, serialized: Any, inputs: Any, kw: dict[str, Any]) -> None:
        run_id, parent = kw["run_id"], kw.get("parent_run_id")
        name = str(kw.get("name") or (serialized or {}).get("name") or "chain")
        agent = is_agent(name)
        wanted = self.chains == "all" or (
            self.chains == "root" and (parent is None or not self.tree.is_open(parent) or agent)
        )
        rec: Recording | None = None
        if wanted:
            rec = self.pm.record(
                model=Model(name, provider="langchain", version=self.version),
                input=jsonable(inputs),
                operation="agent" if agent else "chain",
                tags=self._tags(run_id, parent),
            )
        else:
            self._tags(run_id, parent)
        self.tree.open(run_id, parent, rec)

    def end(self, run_id: UUID, output: Any = None, error: BaseException | None = None) -> None:
        self.roots.pop(str(run_id), None)
        self.tree.close(run_id, output=output, error=error, what="a LangChain run")


def chain_output(outputs: Any) -> Any:
    """A chain's outputs: the text when it is one text (``{"output": text}`` too)."""
    if isinstance(outputs, str):
        return str(outputs)
    if isinstance(outputs, dict) and len(outputs) == 1:
        (only,) = outputs.values()
        if isinstance(only, str):
            return str(only)
    return jsonable(outputs)


def ProvmarkCallbackHandler(
    pm: CaptureTarget, *, chains: str = "root", tags: dict[str, str] | None = None
) -> Any:
    """A LangChain ``BaseCallbackHandler`` recording into ``pm`` (see the module doc).

    Under the ``strict`` capture policy the handler's errors propagate (LangChain's
    ``raise_error``): a call whose record cannot be made fails.
    """
    base = _callbacks().BaseCallbackHandler

    class Handler(base, _Handler):  # type: ignore[valid-type, misc]
        raise_error = pm.policy == "strict"
        run_inline = True  # keep start/end order in async runs

        def __init__(self) -> None:
            base.__init__(self)
            _Handler.__init__(self, pm, chains, tags)

        def on_chat_model_start(self, serialized: Any, messages: Any, **kw: Any) -> None:
            batches = [[message_dict(m) for m in batch] for batch in messages]
            self.model_start(serialized, batches[0] if len(batches) == 1 else batches, kw, "chat")

        def on_llm_start(self, serialized: Any, prompts: Any, **kw: Any) -> None:
            inp = prompts[0] if len(prompts) == 1 else list(prompts)
            self.model_start(serialized, inp, kw, "text_completion")

        def on_llm_end(self, response: Any, *, run_id: UUID, **kw: Any) -> None:
            self.model_end(response, run_id)

        def on_llm_error(self, error: BaseException, *, run_id: UUID, **kw: Any) -> None:
            self.end(run_id, error=error)

        def on_chain_start(self, serialized: Any, inputs: Any, **kw: Any) -> None:
            self.chain_start(serialized, inputs, kw)

        def on_chain_end(self, outputs: Any, *, run_id: UUID, **kw: Any) -> None:
            self.end(run_id, output=chain_output(outputs))

        def on_chain_error(self, error: BaseException, *, run_id: UUID, **kw: Any) -> None:
            self.end(run_id, error=error)

        def on_tool_start(self, serialized: Any, input_str: Any, **kw: Any) -> None:
            self.tree.open(kw["run_id"], kw.get("parent_run_id"), None)

        def on_tool_end(self, output: Any, *, run_id: UUID, **kw: Any) -> None:
            self.end(run_id)

        def on_tool_error(self, error: BaseException, *, run_id: UUID, **kw: Any) -> None:
            self.end(run_id)

        def on_retriever_start(self, serialized: Any, query: Any, **kw: Any) -> None:
            self.tree.open(kw["run_id"], kw.get("parent_run_id"), None)

        def on_retriever_end(self, documents: Any, *, run_id: UUID, **kw: Any) -> None:
            self.end(run_id)

        def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kw: Any) -> None:
            self.end(run_id)

    return Handler()


__all__ = ["ProvmarkCallbackHandler", "chain_output", "generation_output"]
