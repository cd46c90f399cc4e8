"""The OpenAI Responses API (``client.responses.create``), plain and ``stream=True``.

The record's input is ``input`` (with ``instructions`` and a stored ``prompt`` reference
when given, as ``{"instructions", "prompt", "input"}``); its output is the reply text
(``response.output_text``) when the reply has text and calls no tool, else the JSON list
of the output items. A stream is recorded from its ``response.completed`` (or
``response.incomplete``) event; ``response.failed`` and ``error`` events make an error
record.
"""

from __future__ import annotations

from typing import Any

from .common import plain
from .openai_streams import StreamState, Summary

INPUT_KEYS = ("instructions", "prompt", "input")
SKIP = frozenset({"instructions", "include", "background_options", "context_management"})
HASHED = frozenset({"tools", "text", "tool_choice", "json_schema"})


class ResponseFailed(Exception):
    """The Responses API reported the response as failed (``response.failed``/``error``)."""


def request_input(kwargs: dict[str, Any]) -> Any:
    given = {k: plain(kwargs[k]) for k in INPUT_KEYS if kwargs.get(k) is not None}
    if set(given) <= {"input"}:
        return given.get("input")
    return given


def output_of(response: Any) -> Any:
    """The reply text when there is text and no tool call; else the output items."""
    items = list(getattr(response, "output", None) or ())
    calls = [i for i in items if str(getattr(i, "type", "")).endswith("_call")]
    text = response.output_text
    if text and not calls:
        return text
    return [plain(i) for i in items if getattr(i, "type", None) != "reasoning"]


def describe(extra: dict[str, Any], response: Any) -> None:
    status = getattr(response, "status", None)
    if status and status != "completed":
        extra["response_status"] = status
        details = getattr(response, "incomplete_details", None)
        reason = getattr(details, "reason", None)
        if reason:
            extra["incomplete_reason"] = reason


class ResponsesStreamState(StreamState):
    """Typed Responses API events; the record is made from the final response."""

    def __init__(self, inst: Any, call: Any) -> None:
        super().__init__(inst, call)
        self.started: Any = None
        self.final: Any = None
        self.failure: str | None = None
        self.deltas: list[str] = []

    def add(self, event: Any) -> None:
        self.chunks += 1
        kind = getattr(event, "type", "")
        if kind in ("response.created", "response.in_progress"):
            self.started = event.response
        elif kind == "response.output_text.delta":
            self.deltas.append(event.delta or "")
        elif kind in ("response.completed", "response.incomplete"):
            self.final = event.response
        elif kind == "response.failed":
            error = getattr(event.response, "error", None)
            self.failure = f"{getattr(error, 'code', '')}: {getattr(error, 'message', '')}"
        elif kind == "error":
            self.failure = f"{getattr(event, 'code', '')}: {getattr(event, 'message', '')}"

    def end(self, error: BaseException | None) -> None:
        if error is None and self.failure is not None:
            error = ResponseFailed(self.failure.strip(": "))
        super().end(error)

    def result(self) -> tuple[Any, Any]:
        if self.final is not None:
            describe(self.call.rec.outcome.extra, self.final)
            return self.final, output_of(self.final)
        # no final event (a proxy that drops it): what the deltas said
        start = self.started
        summary = Summary(getattr(start, "id", None), None, getattr(start, "model", None), None)
        return summary, "".join(self.deltas)
