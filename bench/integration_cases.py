"""Cases for bench_integrations.py: the OpenAI Responses API and raw views, Anthropic,
LiteLLM, LangChain, LlamaIndex and diffusers. Each returns {name: (bare, with)}.

SDK clients talk to an in-process httpx transport (no socket time hides the wrapper's
cost); LiteLLM uses its ``mock_response``; LangChain and LlamaIndex their fake models;
diffusers a tiny DDPM pipeline built from a config.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import provmark

Case = tuple[Callable[[], Any], Callable[[], Any]]
TEXT = "ok " * 40


def _transport(routes: dict[str, bytes]) -> Any:
    import httpx

    def handler(request: httpx.Request) -> httpx.Response:
        for suffix, body in routes.items():
            if request.url.path.endswith(suffix):
                return httpx.Response(
                    200, content=body, headers={"content-type": "application/json"}
                )
        return httpx.Response(404)

    return httpx.Client(transport=httpx.MockTransport(handler))


def openai_more_cases(pm: provmark.Provmark) -> dict[str, Case]:
    import openai

    from provmark.integrations import openai as pm_openai

    message = {"type": "message", "id": "m1", "status": "completed", "role": "assistant",
               "content": [{"type": "output_text", "text": TEXT, "annotations": []}]}  # fmt: skip
    response = {"id": "resp_1", "object": "response", "created_at": 1, "model": "bench-model",
                "status": "completed", "output": [message], "parallel_tool_calls": True,
                "tool_choice": "auto", "tools": [],
                "usage": {"input_tokens": 20, "output_tokens": 40, "total_tokens": 60,
                          "input_tokens_details": {"cached_tokens": 0},
                          "output_tokens_details": {"reasoning_tokens": 0}}}  # fmt: skip
    chat = {"id": "c1", "object": "chat.completion", "created": 1, "model": "bench-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": TEXT},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 40,
                      "total_tokens": 60}}  # fmt: skip
    routes = {
        "/responses": json.dumps(response).encode(),
        "/chat/completions": json.dumps(chat).encode(),
    }

    def make() -> Any:
        return openai.OpenAI(api_key="sk-bench", base_url="http://bench.invalid/v1",
                             http_client=_transport(routes))  # fmt: skip

    raw, wrapped = make(), pm_openai.instrument(make(), pm)
    ask = {"model": "bench-model", "input": "Summarise the quarterly report.", "temperature": 0.2}
    chat_args = {"model": "bench-model", "messages": [{"role": "user", "content": "hi"}]}
    return {
        "openai responses": (
            lambda: raw.responses.create(**ask),
            lambda: wrapped.responses.create(**ask),
        ),
        "openai chat with_raw_response": (
            lambda: raw.chat.completions.with_raw_response.create(**chat_args).parse(),
            lambda: wrapped.chat.completions.with_raw_response.create(**chat_args).parse(),
        ),
    }


def anthropic_cases(pm: provmark.Provmark) -> dict[str, Case]:
    import anthropic

    from provmark.integrations import anthropic as pm_anthropic

    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-bench",
               "content": [{"type": "text", "text": TEXT}], "stop_reason": "end_turn",
               "stop_sequence": None,
               "usage": {"input_tokens": 20, "output_tokens": 40}}  # fmt: skip
    routes = {"/messages": json.dumps(message).encode()}

    def make() -> Any:
        try:
            return anthropic.Anthropic(api_key="sk-bench", base_url="http://bench.invalid",
                                       http_client=_transport(routes))  # fmt: skip
        except TypeError:  # an SDK on another HTTP client: its own mock transport
            import httpx2

            def handler(request: Any) -> Any:
                return httpx2.Response(200, content=routes["/messages"],
                                       headers={"content-type": "application/json"})  # fmt: skip

            client = httpx2.Client(transport=httpx2.MockTransport(handler))
            return anthropic.Anthropic(api_key="sk-bench", base_url="http://bench.invalid",
                                       http_client=client)  # fmt: skip

    raw, wrapped = make(), pm_anthropic.instrument(make(), pm)
    ask = [{"role": "user", "content": "Summarise the quarterly report."}]
    args = {"model": "claude-bench", "max_tokens": 64, "messages": ask}
    return {
        "anthropic messages": (
            lambda: raw.messages.create(**args),
            lambda: wrapped.messages.create(**args),
        )
    }


def litellm_cases(pm: provmark.Provmark) -> dict[str, Case]:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    from provmark.integrations.litellm import ProvmarkCallback

    callback = ProvmarkCallback(pm)
    ask = [{"role": "user", "content": "Summarise the quarterly report."}]
    args = {"model": "openai/bench-model", "mock_response": TEXT, "messages": ask}

    def bare() -> Any:
        return litellm.completion(**args)

    def wrapped() -> Any:
        callback.install()
        try:
            return litellm.completion(**args)
        finally:
            callback.uninstall()

    return {"litellm completion (caller thread; records on LiteLLM's logger)": (bare, wrapped)}


def langchain_cases(pm: provmark.Provmark) -> dict[str, Case]:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from langchain_core.prompts import ChatPromptTemplate

    from provmark.integrations.langchain import ProvmarkCallbackHandler

    model = FakeListChatModel(responses=[TEXT])
    chain = ChatPromptTemplate.from_messages([("user", "{q}")]) | model
    handler = ProvmarkCallbackHandler(pm)
    return {
        "langchain chat model": (
            lambda: model.invoke("Summarise the quarterly report."),
            lambda: model.invoke(
                "Summarise the quarterly report.", config={"callbacks": [handler]}
            ),
        ),
        "langchain chain (prompt | model, 2 records)": (
            lambda: chain.invoke({"q": "hi"}),
            lambda: chain.invoke({"q": "hi"}, config={"callbacks": [handler]}),
        ),
    }


def llamaindex_cases(pm: provmark.Provmark) -> dict[str, Case]:
    from llama_index.core.instrumentation import get_dispatcher
    from llama_index.core.llms import MockLLM

    from provmark.integrations import llamaindex as pm_llamaindex

    llm = MockLLM(max_tokens=40)
    root = get_dispatcher()
    before = (list(root.span_handlers), list(root.event_handlers))
    recorder = pm_llamaindex.instrument(pm)
    after = (list(root.span_handlers), list(root.event_handlers))

    def run(handlers: tuple[list[Any], list[Any]]) -> Callable[[], Any]:
        def call() -> Any:
            root.span_handlers, root.event_handlers = handlers
            return llm.complete("Summarise the quarterly report.")

        return call

    def cleanup() -> None:
        root.span_handlers, root.event_handlers = after
        pm_llamaindex.uninstrument(recorder)

    return {
        "llamaindex LLM complete": (run(before), run(after)),
        "_cleanup_li": (cleanup, lambda: None),
    }


def diffusers_cases(pm: provmark.Provmark, tmp: Path) -> dict[str, Case]:
    import diffusers
    import torch

    from provmark.integrations import diffusers as pm_diffusers

    torch.manual_seed(0)
    torch.set_num_threads(1)  # steadier timings on a shared 2-core machine
    unet = diffusers.UNet2DModel(
        sample_size=8, in_channels=3, out_channels=3, layers_per_block=1,
        block_out_channels=(8, 16), down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=4,
    )  # fmt: skip
    folder = tmp / "tiny-ddpm"
    diffusers.DDPMPipeline(unet=unet, scheduler=diffusers.DDPMScheduler(num_train_timesteps=10)
                           ).save_pretrained(folder)  # fmt: skip
    raw = diffusers.DDPMPipeline.from_pretrained(folder)
    raw.set_progress_bar_config(disable=True)
    wrapped = pm_diffusers.wrap_pipeline(raw, pm, seed=1)
    return {
        "diffusers DDPM 8x8 (1 step, PNG hashed)": (
            lambda: raw(num_inference_steps=1, generator=torch.Generator().manual_seed(1)),
            lambda: wrapped(num_inference_steps=1),
        )
    }


BUILDERS: dict[str, Callable[..., dict[str, Case]]] = {
    "openai_more": openai_more_cases,
    "anthropic": anthropic_cases,
    "litellm": litellm_cases,
    "langchain": langchain_cases,
    "llamaindex": llamaindex_cases,
}
