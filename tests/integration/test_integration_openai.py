"""OpenAI-compatible clients against the small OpenAI-compatible server of llm_server.py
on 127.0.0.1 (chat, completions, embeddings, the Responses API; see its doc for how model
names steer it)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import llm_server
import pytest

import provmark
from provmark import CaptureError, ConfigError
from provmark.redaction import Redactor

openai = pytest.importorskip("openai", reason="openai is not installable here")
from provmark.integrations import openai as pm_openai  # noqa: E402


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with llm_server.running() as url:
        yield url + "/v1"


@pytest.fixture
def redacting_pm(db_path: Path, home: Path) -> Iterator[provmark.Provmark]:
    with provmark.open(
        db_path, home=home, flush_interval=0.01, redactor=Redactor(None, b"k" * 32)
    ) as pm:
        yield pm


def client(server: str, pm: Any, **options: Any) -> Any:
    return pm_openai.instrument(
        openai.OpenAI(base_url=server, api_key="sk-test", max_retries=0), pm, **options
    )


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Summarise the memo for jo@example.com"},
]


def test_sync_chat_records_everything_and_verifies(server: str, redacting_pm: Any) -> None:
    pm = redacting_pm
    c = client(server, pm)
    reply = c.chat.completions.create(
        model="acme-chat", messages=MESSAGES, temperature=0.2, top_p=0.9, max_tokens=64, seed=11
    )
    text = reply.choices[0].message.content
    assert text == "echo: Summarise the memo for jo@example.com"
    record_id = pm_openai.instrumentation(c).last_record_id
    verified = pm.verify(text)
    r = verified.record
    assert r.record_id == record_id
    assert r.operation == "chat" and r.status == "ok"
    assert r.model.name == "acme-chat" and r.model.provider.startswith("127.0.0.1:")
    assert r.params == {"temperature": 0.2, "top_p": 0.9, "max_tokens": 64, "seed": 11}
    assert r.input.seed == "11"
    assert (
        r.input.sha256 == hashlib.sha256(provmark.canonical.canonical_bytes(MESSAGES)).hexdigest()
    )
    assert "jo@example.com" not in (r.input.snapshot or "")
    assert "[EMAIL:" in (r.input.snapshot or "") and "You are terse." in (r.input.snapshot or "")
    assert r.output is not None and r.output.sha256 == sha(text)
    assert r.extra["response_id"] == reply.id
    assert r.extra["system_fingerprint"] == "fp_local_1"
    assert r.extra["served_model"] == "acme-chat"
    assert r.usage is not None and (r.usage.input_tokens, r.usage.output_tokens) == (7, 3)
    assert r.fallback is None


def test_async_chat_and_streams(server: str, pm: Any) -> None:
    c = pm_openai.instrument(
        openai.AsyncOpenAI(base_url=server, api_key="sk-test", max_retries=0), pm
    )

    async def run() -> tuple[str, str]:
        reply = await c.chat.completions.create(model="acme-chat", messages=MESSAGES[1:])
        stream = await c.chat.completions.create(
            model="acme-chat",
            messages=[{"role": "user", "content": "stream please"}],
            stream=True,
            stream_options={"include_usage": True},
            temperature=0.0,
        )
        pieces = []
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
        await c.close()
        return reply.choices[0].message.content or "", "".join(pieces)

    plain_text, streamed = asyncio.run(run())
    assert streamed == "echo: stream please"
    assert pm.verify(plain_text).record.operation == "chat"
    r = pm.verify(streamed).record
    assert r.params == {"temperature": 0.0}
    assert r.usage.input_tokens == 7 and r.extra["stream_chunks"] >= 5
    assert r.extra["system_fingerprint"] == "fp_local_1" and r.extra["response_id"].startswith(
        "resp-"
    )


def test_sync_stream_and_early_close(server: str, pm: Any) -> None:
    c = client(server, pm)
    with c.chat.completions.create(
        model="acme-chat", messages=[{"role": "user", "content": "abcdefghijkl"}], stream=True
    ) as stream:
        text = "".join(ch.choices[0].delta.content or "" for ch in stream if ch.choices)
    r = pm.verify(text).record
    assert r.output.size == len(text) and r.usage.input_tokens is None  # no include_usage

    stream = c.chat.completions.create(
        model="acme-chat", messages=[{"role": "user", "content": "closed early"}], stream=True
    )
    next(iter(stream))
    stream.close()
    pm.flush()
    r = pm.get(pm_openai.instrumentation(c).last_record_id)
    assert r.status == "error" and r.error.type == "StreamClosedEarly"


def test_fallback_models_and_router_switch_are_recorded(server: str, pm: Any) -> None:
    c = client(server, pm, fallback_models=["backup-model"])
    reply = c.chat.completions.create(model="down", messages=MESSAGES[1:])
    r = pm.verify(reply.choices[0].message.content).record
    assert r.model.name == "backup-model", "the record names the model that answered"
    assert r.fallback is not None
    assert (r.fallback.requested_model, r.fallback.served_model) == ("down", "backup-model")
    assert "InternalServerError" in (r.fallback.reason or "")

    plain_client = client(server, pm)
    routed = plain_client.chat.completions.create(
        model="router/auto", messages=[{"role": "user", "content": "routed"}]
    )
    r = pm.verify(routed.choices[0].message.content).record
    assert r.fallback.served_model == "small-model" and r.fallback.requested_model == "router/auto"
    assert r.model.name == "small-model"

    pinned = plain_client.chat.completions.create(
        model="gpt-x", messages=[{"role": "user", "content": "pinned"}]
    )
    r = pm.verify(pinned.choices[0].message.content).record
    assert r.fallback is None and r.extra["served_model"] == "gpt-x-2026-01-01"
    assert r.model.name == "gpt-x", "a pinned snapshot of the model asked for is no fallback"


def test_fallback_records_are_found_by_the_answering_model(
    server: str, db_path: Path, home: Path
) -> None:
    with provmark.open(db_path, home=home, flush_interval=0.01) as pm:
        c = client(server, pm, fallback_models=["small-model"])
        reply = c.chat.completions.create(model="down", messages=[{"role": "user", "content": "x"}])
        text = reply.choices[0].message.content
        pm.flush()
        assert [r.model.name for r in pm.find(model="small-model").records] == ["small-model"]
        assert not pm.find(model="down").records
    cli = [sys.executable, "-m", "provmark.cli"]
    where = ["--db", str(db_path), "--home", str(home)]
    found = subprocess.run(
        [*cli, "log", "--model", "small-model", "--json", *where],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert found.returncode == 0, found.stderr
    rows = [json.loads(line) for line in found.stdout.splitlines()]
    assert len(rows) == 1 and rows[0]["fallback"]["requested_model"] == "down"
    verified = subprocess.run(
        [*cli, "verify", "--text", text, *where], capture_output=True, text=True, timeout=60
    )
    assert verified.returncode == 0, verified.stderr
    assert "model    small-model" in verified.stdout
    assert "asked for down" in verified.stdout


def test_raw_and_streaming_response_views_record_the_parsed_reply(server: str, pm: Any) -> None:
    c = client(server, pm)
    raw = c.chat.completions.with_raw_response.create(
        model="acme-chat", messages=[{"role": "user", "content": "raw one"}], temperature=0.1
    )
    assert raw.headers["content-type"] == "application/json"
    reply = raw.parse()
    r = pm.verify(reply.choices[0].message.content).record
    assert r.params == {"temperature": 0.1} and r.extra["response_id"] == reply.id

    with c.chat.completions.with_streaming_response.create(
        model="acme-chat", messages=[{"role": "user", "content": "streamed view"}]
    ) as response:
        assert response.http_response.status_code == 200
        body = json.loads(b"".join(response.iter_bytes()))
    assert pm.verify(body["choices"][0]["message"]["content"]).record.operation == "chat"

    raw_stream = c.chat.completions.with_raw_response.create(
        model="acme-chat", messages=[{"role": "user", "content": "raw stream"}], stream=True
    )
    text = "".join(ch.choices[0].delta.content or "" for ch in raw_stream.parse() if ch.choices)
    assert pm.verify(text).record.extra["stream_chunks"] >= 3

    with c.chat.completions.with_streaming_response.create(
        model="acme-chat", messages=[{"role": "user", "content": "view of a stream"}], stream=True
    ) as response:
        text = "".join(ch.choices[0].delta.content or "" for ch in response.parse() if ch.choices)
    assert pm.verify(text).record.output.size == len(text)

    fallback = client(server, pm, fallback_models=["backup-model"])
    raw = fallback.chat.completions.with_raw_response.create(model="down", messages=MESSAGES[1:])
    r = pm.verify(raw.parse().choices[0].message.content).record
    assert r.model.name == "backup-model" and r.fallback.requested_model == "down"
    assert pm.capture_failures == 0


def test_async_raw_and_streaming_response_views(server: str, pm: Any) -> None:
    c = pm_openai.instrument(
        openai.AsyncOpenAI(base_url=server, api_key="sk-test", max_retries=0), pm
    )

    async def run() -> list[str]:
        raw = await c.chat.completions.with_raw_response.create(
            model="acme-chat", messages=[{"role": "user", "content": "async raw"}]
        )
        texts = [raw.parse().choices[0].message.content or ""]
        async with c.chat.completions.with_streaming_response.create(
            model="acme-chat", messages=[{"role": "user", "content": "async view"}]
        ) as response:
            texts.append((await response.parse()).choices[0].message.content or "")
        async with c.chat.completions.with_streaming_response.create(
            model="acme-chat", messages=[{"role": "user", "content": "async stream"}], stream=True
        ) as response:
            pieces = [
                ch.choices[0].delta.content or ""
                async for ch in await response.parse()
                if ch.choices
            ]
            texts.append("".join(pieces))
        await c.close()
        return texts

    for text in asyncio.run(run()):
        assert pm.verify(text).record.status == "ok"


def test_responses_api_plain_stream_and_failure(server: str, pm: Any) -> None:
    c = client(server, pm, fallback_models=["small-model"])
    reply = c.responses.create(
        model="acme-chat",
        input="Summarise the memo",
        instructions="be terse",
        temperature=0.3,
        max_output_tokens=50,
        text={"format": {"type": "text"}},
    )
    assert reply.output_text == "echo: Summarise the memo (be terse)"
    r = pm.verify(reply.output_text).record
    assert r.operation == "chat" and r.extra["api"] == "responses"
    assert r.extra["response_id"] == reply.id and r.extra["served_model"] == "acme-chat"
    assert r.usage.input_tokens == 9 and r.usage.output_tokens == 4
    assert r.params["temperature"] == 0.3 and r.params["max_output_tokens"] == 50
    assert "text_sha256" in r.params and "text" not in r.params
    assert json.loads(r.input.snapshot) == {
        "input": "Summarise the memo",
        "instructions": "be terse",
    }

    stream = c.responses.create(model="acme-chat", input="stream it", stream=True)
    deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
    r = pm.verify("".join(deltas)).record
    assert r.usage.output_tokens == 4 and r.extra["stream_chunks"] == len(deltas) + 2

    fell_back = c.responses.create(model="down", input="who answers?")
    r = pm.verify(fell_back.output_text).record
    assert r.model.name == "small-model" and r.fallback.requested_model == "down"

    raw = c.responses.with_raw_response.create(model="acme-chat", input="raw responses")
    assert pm.verify(raw.parse().output_text).record.extra["api"] == "responses"

    failing = c.responses.create(model="failing", input="crash", stream=True)
    for _ in failing:
        pass
    pm.flush()
    r = pm.get(pm_openai.instrumentation(c).last_record_id)
    assert r.status == "error" and r.error.type == "ResponseFailed"
    assert "the model crashed" in (r.error.message or "")


def test_tool_calls_are_the_output(server: str, pm: Any) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    c = client(server, pm)
    reply = c.chat.completions.create(
        model="acme-chat", messages=[{"role": "user", "content": "weather in Paris?"}], tools=tools
    )
    message = reply.choices[0].message
    r = pm.verify([message.model_dump(mode="json", exclude_none=True)]).record
    assert "tools_sha256" in r.params


def test_failed_call_is_an_error_record(server: str, pm: Any) -> None:
    c = client(server, pm)
    with pytest.raises(openai.InternalServerError):
        c.chat.completions.create(model="down", messages=MESSAGES[1:])
    pm.flush()
    r = pm.get(pm_openai.instrumentation(c).last_record_id)
    assert r.status == "error" and r.error.type == "InternalServerError"
    assert r.output is None


def test_completions_embeddings_n_choices_and_copies(server: str, pm: Any) -> None:
    c = client(server, pm)
    done = c.completions.create(model="acme-base", prompt="once upon", max_tokens=5)
    r = pm.verify(done.choices[0].text).record
    assert r.operation == "text_completion" and r.input.snapshot == "once upon"

    emb = c.embeddings.create(model="acme-embed", input=["a", "bb"])
    vectors = [d.embedding for d in emb.data]
    r = pm.verify(vectors).record
    assert r.operation == "embeddings" and r.usage.input_tokens == 4

    many = c.chat.completions.create(model="acme-chat", messages=MESSAGES[1:], n=2)
    r = pm.verify([ch.message.model_dump(mode="json", exclude_none=True) for ch in many.choices])
    assert r.record.params["n"] == 2

    copy = c.with_options(timeout=5)
    copy.chat.completions.create(model="copied", messages=MESSAGES[1:])
    pm.flush()
    assert pm.find(model="copied").records, "a with_options copy is instrumented too"

    pm_openai.uninstrument(c)
    pm.flush()
    before = len(pm.find(limit=500).records)
    c.chat.completions.create(model="after-uninstrument", messages=MESSAGES[1:])
    pm.flush()
    assert len(pm.find(limit=500).records) == before, "uninstrumented: no more records"


def test_unreadable_reply_follows_the_capture_policy(
    server: str, db_path: Path, home: Path
) -> None:
    with provmark.open(db_path, home=home) as strict:
        c = client(server, strict)
        with pytest.raises(CaptureError, match="reading the chat response"):
            c.chat.completions.create(model="malformed", messages=MESSAGES[1:])
        assert strict.capture_failures == 1
    with provmark.open(db_path, home=home, policy="best_effort") as lenient:
        c = client(server, lenient)
        reply = c.chat.completions.create(model="malformed", messages=MESSAGES[1:])
        assert reply.id.startswith("resp-")  # the caller still gets its reply
        assert lenient.capture_failures == 1


def test_bad_client_and_missing_or_old_library(pm: Any) -> None:
    with pytest.raises(ConfigError, match=r"openai\.OpenAI or openai\.AsyncOpenAI"):
        pm_openai.instrument(object(), pm)
    code = (
        "import sys; sys.modules['openai'] = None\n"
        "from provmark.integrations import openai as o\n"
        "try:\n    o.instrument(object(), None)\n"
        "except Exception as e:\n    print(type(e).__name__, e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("ConfigError") and "pip install 'provmark[openai]'" in out.stdout
    code = (
        "import openai; openai.__version__ = '0.28.1'\n"
        "from provmark.integrations import openai as o\n"
        "try:\n    o.instrument(object(), None)\n"
        "except Exception as e:\n    print(type(e).__name__, e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("ConfigError") and "openai>=1.0,<4" in out.stdout
    assert "openai 0.28.1 is installed" in out.stdout
