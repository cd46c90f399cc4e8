"""LlamaIndex (llama-index-core) with provmark's span and event handlers on its dispatcher:
an LLM over the OpenAI-compatible server of llm_server.py on 127.0.0.1, the library's
MockLLM and MockEmbedding in a real query engine, and a ReAct agent run with a tool."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import llm_server
import pytest
from pydantic import Field

pytest.importorskip("llama_index.core", reason="llama-index-core is not installable here")
from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import (
    ChatMessage,
    CompletionResponse,
    CompletionResponseGen,
    CustomLLM,
    LLMMetadata,
    MockLLM,
)
from llama_index.core.llms.callbacks import llm_completion_callback

from provmark.integrations import llamaindex as pm_llamaindex


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with llm_server.running() as url:
        yield url + "/v1"


@pytest.fixture
def recorder(pm: Any) -> Iterator[Any]:
    rec = pm_llamaindex.instrument(pm, tags={"app": "tests"})
    yield rec
    pm_llamaindex.uninstrument(rec)


class LocalLLM(CustomLLM):
    """A completion LLM over an OpenAI-compatible /completions endpoint (or a script)."""

    model: str = "acme-base"
    base_url: str = ""
    temperature: float = 0.1
    script: list[str] = Field(default_factory=list)

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name=self.model, num_output=64)

    def _text(self, prompt: str) -> str:
        if self.script:
            return self.script.pop(0)
        body = {"model": self.model, "prompt": prompt, "temperature": self.temperature}
        return str(
            httpx.post(f"{self.base_url}/completions", json=body).json()["choices"][0]["text"]
        )

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kw: Any) -> CompletionResponse:
        return CompletionResponse(text=self._text(prompt))

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kw: Any
    ) -> CompletionResponseGen:
        text = self._text(prompt)

        def gen() -> CompletionResponseGen:
            for i in range(0, len(text), 5):
                yield CompletionResponse(text=text[: i + 5], delta=text[i : i + 5])

        return gen()


def test_llm_calls_and_a_query_engine(server: str, pm: Any, recorder: Any) -> None:
    llm = LocalLLM(base_url=server)
    reply = llm.complete("Summarise the memo")
    r = pm.verify(reply.text).record
    assert r.operation == "text_completion" and r.model.name == "acme-base"
    assert r.model.provider == "llama_index:LocalLLM" and r.params["temperature"] == 0.1
    assert r.input.snapshot == "Summarise the memo" and r.tags["app"] == "tests"

    chat = MockLLM(max_tokens=4).chat([ChatMessage(role="user", content="hello there")])
    r = pm.verify(chat.message.content).record
    assert r.operation == "chat" and r.model.name == "MockLLM"
    assert json.loads(r.input.snapshot) == [{"role": "user", "content": "hello there"}]
    pm.flush()
    assert len(pm.find(model="MockLLM").records) == 1, "chat over complete: one record"

    Settings.embed_model = MockEmbedding(embed_dim=8)
    index = VectorStoreIndex.from_documents(
        [Document(text="The memo says revenue grew 4%."), Document(text="Unrelated text.")]
    )
    engine = index.as_query_engine(llm=LocalLLM(base_url=server), similarity_top_k=1)
    answer = engine.query("What did the memo say?")
    pm.flush()
    query = pm.get(recorder.last_record_id)
    assert query.operation == "chain" and query.model.provider == "llama_index"
    assert query.output.sha256 == pm.verify(str(answer)).record.output.sha256
    (call,) = query.parents
    assert pm.get(call).model.name == "acme-base"


def test_agent_run_lineage(pm: Any, recorder: Any) -> None:
    from llama_index.core.agent.workflow import ReActAgent
    from llama_index.core.tools import FunctionTool

    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    script = [
        'Thought: I need the weather.\nAction: get_weather\nAction Input: {"city": "Paris"}',
        "Thought: I can answer without using any more tools.\nAnswer: It is sunny in Paris.",
    ]
    llm = LocalLLM(model="acme-react", script=script)
    agent = ReActAgent(tools=[FunctionTool.from_defaults(get_weather)], llm=llm)

    async def run() -> Any:
        return await agent.run(user_msg="weather in Paris?")

    result = asyncio.run(run())
    assert "sunny in Paris" in str(result)
    pm.flush()
    runs = [r for r in pm.find(operation="agent", limit=50).records]
    assert runs, "the agent run is a record"
    assert runs[0].output is not None and runs[0].status == "ok"
    assert runs[0].model.name == "ReActAgent" and runs[0].input.snapshot == "weather in Paris?"
    calls = {p for r in runs for p in r.parents}
    assert len([c for c in calls if pm.get(c).model.name == "acme-react"]) == 2
