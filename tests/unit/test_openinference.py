"""OpenInference attributes (flattened lists) read as the parts of a record."""

from __future__ import annotations

import json

from provmark.integrations import openinference as oi


def test_unflatten_rebuilds_nested_lists_by_index() -> None:
    attrs = {
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": "Be brief.",
        "llm.input_messages.1.message.contents.1.message_content.type": "image",
        "llm.input_messages.1.message.contents.0.message_content.type": "text",
        "llm.input_messages.1.message.contents.0.message_content.text": "What is this?",
        "llm.input_messages.x.message.role": "ignored",
        "other": 1,
    }
    assert oi.unflatten(attrs, "llm.input_messages") == [
        {"message": {"role": "system", "content": "Be brief."}},
        {
            "message": {
                "role": "user",
                "contents": [
                    {"message_content": {"type": "text", "text": "What is this?"}},
                    {"message_content": {"type": "image"}},
                ],
            }
        },
    ]


def test_llm_span_fields_and_outputs() -> None:
    base = {
        "openinference.span.kind": "LLM",
        "llm.model_name": "claude-x",
        "llm.system": "anthropic",
        "llm.invocation_parameters": json.dumps({"temperature": 0, "max_tokens": 5, "extra": 1}),
        "llm.input_messages.0.message.role": "user",
        "llm.input_messages.0.message.content": "Hi",
    }
    text_parts = {
        **base,
        "llm.output_messages.0.message.contents.0.message_content.type": "text",
        "llm.output_messages.0.message.contents.0.message_content.text": "Hel",
        "llm.output_messages.0.message.contents.1.message_content.type": "text",
        "llm.output_messages.0.message.contents.1.message_content.text": "lo",
    }
    found = oi.fields(text_parts)
    assert found is not None
    assert (found.operation, found.model, found.provider) == ("chat", "claude-x", "anthropic")
    assert found.params == {"temperature": 0, "max_tokens": 5}
    assert found.output == "Hello"
    tool = {
        **base,
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "lookup",
    }
    found = oi.fields(tool)
    assert found is not None and isinstance(found.output, list), "a tool call is kept whole"
    plain = {
        "openinference.span.kind": "LLM",
        "llm.invocation_parameters": "not json",
        "input.value": '{"prompt": "x"}',
        "input.mime_type": "application/json",
        "output.value": "y",
    }
    found = oi.fields(plain)
    assert found is not None
    assert (found.operation, found.input, found.output, found.params) == (
        "text_completion",
        {"prompt": "x"},
        "y",
        {},
    )


def test_other_span_kinds_are_no_generation() -> None:
    for kind in ("CHAIN", "TOOL", "RETRIEVER", "AGENT", None):
        assert oi.fields({"openinference.span.kind": kind}) is None
