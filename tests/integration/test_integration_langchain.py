"""LangChain (langchain-core) with provmark's callback handler: a chat model that talks to
the OpenAI-compatible server of llm_server.py on 127.0.0.1, a real chain, an agent loop
with a tool, and langchain-core's own fake LLM."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import llm_server
import pytest

pytest.importorskip("langchain_core", reason="langchain-core is not installable here")
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.language_models.fake import FakeListLLM
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool

from provmark.integrations.langchain import ProvmarkCallbackHandler


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with llm_server.running() as url:
        yield url + "/v1"


class LocalChat(BaseChatModel):
    """A chat model over an OpenAI-compatible /chat/completions endpoint."""

    model: str
    base_url: str
    temperature: float = 0.0

    @property
    def _llm_type(self) -> str:
        return "local-openai"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model, "temperature": self.temperature}

    def _get_ls_params(self, stop: Any = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "local"
        params["ls_model_name"] = self.model
        return params

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any) -> Any:
        roles = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}
        body: dict[str, Any] = {
            "model": self.model,
            "temperature": self.temperature,
            "messages": [{"role": roles[m.type], "content": m.content} for m in messages],
        }
        if kw.get("tools"):
            body["tools"] = kw["tools"]
        reply = httpx.post(f"{self.base_url}/chat/completions", json=body, timeout=10).json()
        choice = reply["choices"][0]["message"]
        calls = [
            {"name": c["function"]["name"], "args": json.loads(c["function"]["arguments"]),
             "id": c["id"]}
            for c in choice.get("tool_calls") or ()
        ]  # fmt: skip
        usage = reply["usage"]
        message = AIMessage(
            content=choice.get("content") or "",
            tool_calls=calls,
            usage_metadata={
                "input_tokens": usage["prompt_tokens"],
                "output_tokens": usage["completion_tokens"],
                "total_tokens": usage["total_tokens"],
            },
        )
        return ChatResult(
            generations=[ChatGeneration(message=message)],
            llm_output={"model_name": reply["model"], "token_usage": usage},
        )


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {}}}


def test_chain_and_agent_runs_with_lineage(server: str, pm: Any) -> None:
    handler = ProvmarkCallbackHandler(pm)
    model = LocalChat(model="acme-chat", base_url=server, temperature=0.2)
    chain = ChatPromptTemplate.from_messages([("user", "Summarise: {text}")]) | model
    reply = chain.invoke({"text": "the memo"}, config={"callbacks": [handler]})
    assert reply.content == "echo: Summarise: the memo"
    call = pm.verify(reply.content).record
    assert call.operation == "chat" and call.model.name == "acme-chat"
    assert call.model.provider == "local" and call.params["temperature"] == 0.2
    assert call.usage.input_tokens == 7 and call.usage.output_tokens == 3
    assert json.loads(call.input.snapshot) == [{"role": "human", "content": "Summarise: the memo"}]
    pm.flush()
    root = pm.get(handler.last_record_id)
    assert root.operation == "chain" and root.parents == [call.record_id]
    assert root.tags["langchain.trace"] == call.tags["langchain.trace"]

    def agent(question: str) -> dict[str, str]:
        first = model.invoke([HumanMessage(question)], tools=[WEATHER_TOOL])
        (tool_call,) = first.tool_calls
        result = get_weather.invoke(tool_call["args"])
        followup = [
            HumanMessage(question),
            first,
            ToolMessage(result, tool_call_id=tool_call["id"]),
        ]
        return {"output": str(model.invoke(followup).content)}

    weather_agent = RunnableLambda(agent).with_config(run_name="weather_agent")
    answer = weather_agent.invoke("weather in Paris?", config={"callbacks": [handler]})
    assert answer["output"] == "echo: sunny in Paris"
    pm.flush()
    run = pm.get(handler.last_record_id)  # the agent run: same text as its last call
    assert run.operation == "agent" and run.model.name == "weather_agent"
    assert run.model.provider == "langchain" and run.input.snapshot == "weather in Paris?"
    assert len(run.parents) == 2
    first, second = (pm.get(p) for p in run.parents)
    assert first.output.media_type == "application/json"  # the tool call
    assert "tools_sha256" in first.params
    assert second.output.sha256 == run.output.sha256  # the agent answered with the last reply
    assert {first.tags["langchain.trace"], second.tags["langchain.trace"]} == {
        run.tags["langchain.run_id"]
    }


def test_llm_async_and_chains_all(pm: Any) -> None:
    handler = ProvmarkCallbackHandler(pm, chains="none", tags={"app": "tests"})
    llm = FakeListLLM(responses=["a fake completion"])
    out = llm.invoke("complete me", config={"callbacks": [handler]})
    r = pm.verify(out).record
    assert r.operation == "text_completion" and r.input.snapshot == "complete me"
    assert r.model.provider == "fakelist" and r.tags["app"] == "tests"

    every = ProvmarkCallbackHandler(pm, chains="all")
    chain = RunnableLambda(lambda x: x + "!") | FakeListLLM(responses=["async done"])
    text = asyncio.run(chain.ainvoke("go", config={"callbacks": [every]}))
    call = pm.verify(text).record
    pm.flush()
    top = pm.get(every.last_record_id)
    assert top.operation == "chain" and call.record_id in top.parents


def test_strict_policy_fails_the_call_best_effort_does_not(
    db_path: Any, home: Any, pm: Any
) -> None:
    import provmark

    too_long = {"note": "x" * 5000}  # over the tag length limit: the record cannot be made
    model = FakeListLLM(responses=["never recorded"])
    with pytest.raises(provmark.ProvmarkError, match=r"tags\.note"):
        model.invoke("x", config={"callbacks": [ProvmarkCallbackHandler(pm, tags=too_long)]})
    with provmark.open(db_path.parent / "lenient.db", home=home, policy="best_effort") as lenient:
        handler = ProvmarkCallbackHandler(lenient, tags=too_long)
        assert model.invoke("x", config={"callbacks": [handler]}) == "never recorded"
