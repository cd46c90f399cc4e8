"""The Anthropic SDK against the Anthropic-compatible /v1/messages of llm_server.py on
127.0.0.1: plain, streamed (create(stream=True) and messages.stream()), tool use, async,
raw responses, fallbacks and failures."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import llm_server
import pytest

from provmark import ConfigError

anthropic = pytest.importorskip("anthropic", reason="anthropic is not installable here")
from provmark.integrations import anthropic as pm_anthropic  # noqa: E402

TOOLS = [
    {
        "name": "get_weather",
        "description": "Weather in a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]
ASK = [{"role": "user", "content": "Summarise the memo"}]
WEATHER = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with llm_server.running() as url:
        yield url


def client(server: str, pm: Any, **options: Any) -> Any:
    sdk = anthropic.Anthropic(base_url=server, api_key="sk-ant-test", max_retries=0)
    return pm_anthropic.instrument(sdk, pm, **options)


def test_messages_plain_and_tool_use(server: str, pm: Any) -> None:
    c = client(server, pm)
    message = c.messages.create(
        model="claude-test", max_tokens=64, messages=ASK, system="be terse", stop_sequences=["END"]
    )
    text = message.content[0].text
    assert text == "echo: Summarise the memo"
    r = pm.verify(text).record
    assert r.operation == "chat" and r.model.name == "claude-test"
    assert r.model.provider.startswith("127.0.0.1:")
    assert r.params == {"max_tokens": 64, "stop_sequences": ["END"]}
    assert json.loads(r.input.snapshot) == {"system": "be terse", "messages": ASK}
    assert r.usage.input_tokens == 11 and r.usage.output_tokens == 5
    assert r.extra["response_id"] == message.id and r.extra["stop_reason"] == "end_turn"

    tool = c.messages.create(model="claude-test", max_tokens=64, messages=WEATHER, tools=TOOLS)
    assert tool.stop_reason == "tool_use"
    blocks = [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
    ]
    r = pm.verify(blocks).record
    assert "tools_sha256" in r.params and r.extra["stop_reason"] == "tool_use"
    assert r.record_id == pm_anthropic.instrumentation(c).last_record_id


def test_streams_record_the_same_output(server: str, pm: Any) -> None:
    c = client(server, pm)
    stream = c.messages.create(model="claude-test", max_tokens=64, messages=ASK, stream=True)
    text = "".join(
        e.delta.text
        for e in stream
        if e.type == "content_block_delta" and e.delta.type == "text_delta"
    )
    r = pm.verify(text).record
    assert r.usage.output_tokens == 5 and r.extra["stream_chunks"] >= 5

    with c.messages.stream(model="claude-test", max_tokens=64, messages=WEATHER, tools=TOOLS) as s:
        final = s.get_final_message()
    assert final.stop_reason == "tool_use"
    r = pm.verify([pm_anthropic.block(b) for b in final.content]).record
    assert r.extra["stop_reason"] == "tool_use" and r.usage.input_tokens == 11

    streamed_tool = c.messages.create(
        model="claude-test", max_tokens=64, messages=WEATHER, tools=TOOLS, stream=True
    )
    for _ in streamed_tool:
        pass
    pm.flush()
    same = pm.get(pm_anthropic.instrumentation(c).last_record_id)
    assert same.record_id != r.record_id and same.output.sha256 == r.output.sha256

    with c.messages.stream(model="claude-test", max_tokens=64, messages=ASK) as s:
        next(iter(s))  # left early
    pm.flush()
    early = pm.get(pm_anthropic.instrumentation(c).last_record_id)
    assert early.status == "error" and early.error.type == "StreamClosedEarly"


def test_async_raw_fallback_and_errors(server: str, pm: Any) -> None:
    c = pm_anthropic.instrument(
        anthropic.AsyncAnthropic(base_url=server, api_key="sk-ant-test", max_retries=0),
        pm,
        fallback_models=["claude-small"],
    )

    async def run() -> list[str]:
        plain = await c.messages.create(model="claude-test", max_tokens=8, messages=ASK)
        fell = await c.messages.create(
            model="down", max_tokens=8, messages=[{"role": "user", "content": "who answers?"}]
        )
        raw = await c.messages.with_raw_response.create(
            model="claude-test", max_tokens=8, messages=[{"role": "user", "content": "raw"}]
        )
        async with c.messages.stream(
            model="claude-test", max_tokens=8, messages=[{"role": "user", "content": "async"}]
        ) as s:
            streamed = await s.get_final_text()
        parsed = await raw.parse()  # async in this SDK
        await c.close()
        return [plain.content[0].text, fell.content[0].text, parsed.content[0].text, streamed]

    plain, fell, raw, streamed = asyncio.run(run())
    assert pm.verify(plain).record.fallback is None
    r = pm.verify(fell).record
    assert r.model.name == "claude-small" and r.fallback.requested_model == "down"
    assert pm.verify(raw).record.status == "ok"
    assert pm.verify(streamed).record.status == "ok"

    plain_client = client(server, pm)
    with pytest.raises(anthropic.InternalServerError):
        plain_client.messages.create(model="down", max_tokens=8, messages=ASK)
    pm.flush()
    failed = pm.get(pm_anthropic.instrumentation(plain_client).last_record_id)
    assert failed.status == "error" and failed.error.type == "ServiceUnavailableError"

    pm_anthropic.uninstrument(plain_client)
    before = len(pm.find(limit=500).records)
    plain_client.messages.create(model="claude-test", max_tokens=8, messages=ASK)
    pm.flush()
    assert len(pm.find(limit=500).records) == before
    with pytest.raises(ConfigError, match=r"anthropic\.Anthropic"):
        pm_anthropic.instrument(object(), pm)
