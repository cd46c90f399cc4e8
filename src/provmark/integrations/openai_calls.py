"""One instrumented OpenAI-style call in flight, shared by the client wrapper
(:mod:`provmark.integrations.openai`) and its stream wrappers
(:mod:`provmark.integrations.openai_streams`), which would otherwise import each other."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..capture.core import Recording

__all__ = ["ENDPOINTS", "Call", "Endpoint", "Settles"]


@dataclass(frozen=True)
class Endpoint:
    """One instrumented ``create``: its record operation and where its input is."""

    kind: str  # chat, text_completion, embeddings, responses; messages (Anthropic)
    path: tuple[str, ...]
    input_key: str

    @property
    def operation(self) -> str:
        return "chat" if self.kind in ("responses", "messages") else self.kind


ENDPOINTS = (
    Endpoint("chat", ("chat", "completions"), "messages"),
    Endpoint("text_completion", ("completions",), "prompt"),
    Endpoint("embeddings", ("embeddings",), "input"),
    Endpoint("responses", ("responses",), "input"),
)


@dataclass
class Call:
    """One call in flight: its recording and which models were tried."""

    rec: Recording
    endpoint: Endpoint
    requested: str
    failures: list[str] = field(default_factory=list)
    used: str = ""


class Settles(Protocol):
    """What a stream needs of its instrumentation: write the record once it has ended."""

    def settle(self, call: Call, result: Callable[[], tuple[Any, Any]], what: str) -> None: ...

    def finish(self, rec: Recording, error: BaseException | None = None) -> None: ...
