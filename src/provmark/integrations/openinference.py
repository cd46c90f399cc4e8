"""OpenInference span attributes (Arize Phoenix and its instrumentations) read as records.

OpenInference flattens lists into indexed attributes
(``llm.input_messages.0.message.role``, ``llm.output_messages.0.message.content``, ...)
and names the span kind in ``openinference.span.kind``. :func:`fields` turns the
attributes of an ``LLM`` or ``EMBEDDING`` span into the parts of a record; the
OpenTelemetry span processor (:mod:`provmark.integrations.otel`) uses them when a
span has no ``gen_ai.*`` attributes for a part.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SPAN_KIND = "openinference.span.kind"
# the invocation parameters recorded as params, by their OpenInference/OpenAI names
_PARAMS = (
    "temperature",
    "top_p",
    "top_k",
    "max_tokens",
    "max_completion_tokens",
    "max_output_tokens",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "stop",
    "n",
    "stream",
)


@dataclass
class Fields:
    """What an OpenInference span says about one generation."""

    operation: str
    model: str | None = None
    provider: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    input: Any = None
    output: Any = None
    usage: dict[str, int] = field(default_factory=dict)
    user: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def operation_of(attrs: Mapping[str, Any]) -> str | None:
    """The gen_ai operation name an OpenInference span kind stands for (None: not a generation)."""
    kind = attrs.get(SPAN_KIND)
    if kind == "LLM":
        chat = any(k.startswith(("llm.input_messages.", "llm.output_messages.")) for k in attrs)
        return "chat" if chat else "text_completion"
    if kind == "EMBEDDING":
        return "embeddings"
    return None


def _value(text: Any, mime: Any) -> Any:
    if isinstance(text, str) and mime == "application/json":
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def unflatten(attrs: Mapping[str, Any], prefix: str) -> list[Any]:
    """``prefix.0.a.b = 1, prefix.1.a = 2`` -> ``[{"a": {"b": 1}}, {"a": 2}]`` (lists by index)."""
    items: dict[int, dict[str, Any]] = {}
    for key, value in attrs.items():
        if not key.startswith(prefix + "."):
            continue
        index, _, rest = key[len(prefix) + 1 :].partition(".")
        if not index.isdigit() or not rest:
            continue
        node = items.setdefault(int(index), {})
        parts = rest.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = list(value) if isinstance(value, tuple) else value
    return [_lists(items[i]) for i in sorted(items)]


def _lists(node: Any) -> Any:
    """Dicts keyed 0, 1, ... (from nested indexed attributes) become lists."""
    if not isinstance(node, dict):
        return node
    if node and all(k.isdigit() for k in node):
        return [_lists(node[k]) for k in sorted(node, key=int)]
    return {k: _lists(v) for k, v in node.items()}


def _messages(attrs: Mapping[str, Any], prefix: str) -> list[dict[str, Any]]:
    out = []
    for item in unflatten(attrs, prefix):
        message = item.get("message") if isinstance(item, dict) else None
        if isinstance(message, dict):
            out.append(message)
    return out


def _reply(messages: list[dict[str, Any]]) -> Any:
    one = messages[0] if len(messages) == 1 else {}
    if isinstance(one.get("content"), str) and not one.get("tool_calls"):
        return one["content"]
    contents = messages[0].get("contents") if len(messages) == 1 else None
    if isinstance(contents, list) and contents:
        parts = [c.get("message_content", {}) for c in contents if isinstance(c, dict)]
        if parts and all(p.get("type") == "text" for p in parts):
            return "".join(str(p.get("text", "")) for p in parts)
    return messages


def fields(attrs: Mapping[str, Any]) -> Fields | None:
    """The record parts of an OpenInference ``LLM``/``EMBEDDING`` span; None for other kinds."""
    operation = operation_of(attrs)
    if operation is None:
        return None
    found = Fields(operation)
    found.model = attrs.get("llm.model_name") or attrs.get("embedding.model_name")
    found.provider = attrs.get("llm.provider") or attrs.get("llm.system")
    invocation = attrs.get("llm.invocation_parameters")
    if isinstance(invocation, str):
        try:
            invocation = json.loads(invocation)
        except ValueError:
            invocation = None
    if isinstance(invocation, dict):
        found.params = {k: invocation[k] for k in _PARAMS if k in invocation}
        if not found.model and isinstance(invocation.get("model"), str):
            found.model = invocation["model"]
    if operation == "embeddings":
        embeddings = [e.get("embedding", {}) for e in unflatten(attrs, "embedding.embeddings")]
        texts = [e["text"] for e in embeddings if "text" in e]
        vectors = [e["vector"] for e in embeddings if "vector" in e]
        found.input = texts or None
        found.output = vectors or None
    else:
        inputs = _messages(attrs, "llm.input_messages")
        outputs = _messages(attrs, "llm.output_messages")
        found.input = inputs or None
        found.output = _reply(outputs) if outputs else None
    if found.input is None and "input.value" in attrs:
        found.input = _value(attrs["input.value"], attrs.get("input.mime_type"))
    if found.output is None and "output.value" in attrs:
        found.output = _value(attrs["output.value"], attrs.get("output.mime_type"))
    for key, name in (
        ("llm.token_count.prompt", "input_tokens"),
        ("llm.token_count.completion", "output_tokens"),
    ):
        if isinstance(attrs.get(key), int):
            found.usage[name] = attrs[key]
    user = attrs.get("user.id")
    found.user = str(user) if user else None
    if attrs.get("session.id"):
        found.extra["session_id"] = attrs["session.id"]
    return found
