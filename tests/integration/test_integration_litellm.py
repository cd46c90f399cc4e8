"""LiteLLM routing to the OpenAI-compatible server of llm_server.py on 127.0.0.1, with
provmark's callback in ``litellm.callbacks``: plain, streamed, async, fallbacks, errors."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import llm_server
import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no fetch at import
litellm = pytest.importorskip("litellm", reason="litellm is not installable here")
from provmark.integrations.litellm import ProvmarkCallback  # noqa: E402


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with llm_server.running() as url:
        yield url + "/v1"


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_completion_stream_and_embedding(server: str, pm: Any) -> None:
    callback = ProvmarkCallback(pm, tags={"app": "router"})
    common = {"api_base": server, "api_key": "sk-test"}
    with callback.installed():
        reply = litellm.completion(
            model="openai/acme-chat", messages=ask("via litellm"), temperature=0.2, **common
        )
        assert callback.wait(1)
        stream = litellm.completion(
            model="openai/acme-chat", messages=ask("streamed"), stream=True, **common
        )
        streamed = "".join(c.choices[0].delta.content or "" for c in stream)
        assert callback.wait(2)
        litellm.embedding(model="openai/acme-embed", input=["a", "bb"], **common)
        assert callback.wait(3)
    assert callback not in litellm.callbacks

    r = pm.verify(reply.choices[0].message.content).record
    assert r.operation == "chat" and r.model.name == "acme-chat" and r.model.provider == "openai"
    assert r.params == {"temperature": 0.2} and r.tags == {"app": "router"}
    assert r.usage.input_tokens == 7 and r.extra["response_id"] == reply.id
    assert r.extra["endpoint"].startswith("http://127.0.0.1:")
    assert streamed == "echo: streamed"
    assert pm.verify(streamed).record.record_id == callback.record_ids[1]
    emb = pm.get(callback.record_ids[2])
    assert emb.operation == "embeddings" and emb.model.name == "acme-embed"


def test_async_failures_and_fallback_attempts(server: str, pm: Any) -> None:
    callback = ProvmarkCallback(pm)
    common = {"api_base": server, "api_key": "sk-test", "num_retries": 0}

    async def run() -> str:
        reply = await litellm.acompletion(model="openai/acme-chat", messages=ask("async"), **common)
        for _ in range(1000):  # LiteLLM logs async calls in a task of this loop
            if callback.record_ids:
                break
            await asyncio.sleep(0.01)
        return str(reply.choices[0].message.content)

    with callback.installed():
        text = asyncio.run(run())
        assert callback.wait(1)
        litellm.completion(
            model="openai/down", messages=ask("who answers"), fallbacks=["openai/small-model"],
            **common,
        )  # fmt: skip
        assert callback.wait(2)  # the failed attempt (LiteLLM does not log the fallback's answer)
        with pytest.raises(litellm.ServiceUnavailableError):
            litellm.completion(model="openai/down", messages=ask("no luck"), **common)
        assert callback.wait(3)
    assert pm.verify(text).record.status == "ok"
    pm.flush()
    failed = pm.find(model="down", status="error", limit=1).records[0]
    assert failed.error.type in ("ServiceUnavailableError", "InternalServerError")
    assert failed.input.snapshot and "no luck" in failed.input.snapshot
