"""OpenAI-compatible clients against a small OpenAI-compatible server on 127.0.0.1.

The server speaks /v1/chat/completions (plain and SSE streaming), /v1/completions and
/v1/embeddings. Model names steer it: ``down`` answers 503, ``router/auto`` is answered
by ``small-model`` (a router switching models), ``gpt-x`` by its pinned snapshot
``gpt-x-2026-01-01``, ``malformed`` returns a reply without ``choices``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import provmark
from provmark import CaptureError, ConfigError
from provmark.redaction import Redactor

openai = pytest.importorskip("openai", reason="openai is not installable here")
from provmark.integrations import openai as pm_openai  # noqa: E402

SERVED = {"router/auto": "small-model", "gpt-x": "gpt-x-2026-01-01"}


def reply_for(body: dict[str, Any]) -> str:
    last = body["messages"][-1]["content"] if "messages" in body else body.get("prompt", "")
    return f"echo: {last}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        model = body["model"]
        if model == "down":
            return self.send(503, {"error": {"message": "overloaded", "type": "server_error"}})
        served = SERVED.get(model, model)
        base = {"id": "resp-" + hashlib.sha256(json.dumps(body).encode()).hexdigest()[:12]}
        base.update(created=1700000000, model=served, system_fingerprint="fp_local_1")
        usage = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
        if self.path.endswith("/embeddings"):
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            data = [
                {"object": "embedding", "index": i, "embedding": [0.25, -0.5, float(len(t))]}
                for i, t in enumerate(inputs)
            ]
            usage = {"prompt_tokens": 4, "total_tokens": 4}
            return self.send(200, {"object": "list", "data": data, "model": served, "usage": usage})
        text = reply_for(body)
        if model == "malformed":
            return self.send(200, {**base, "object": "chat.completion"})
        if self.path.endswith("/completions") and "messages" not in body:
            choice = {"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}
            return self.send(200, {**base, "object": "text_completion", "choices": [choice]})
        if body.get("stream"):
            return self.stream(base, text, usage, body)
        n = body.get("n", 1)
        choices = [
            {
                "index": i,
                "message": {"role": "assistant", "content": text + ("" if i == 0 else f" #{i}")},
                "finish_reason": "stop",
            }
            for i in range(n)
        ]
        self.send(200, {**base, "object": "chat.completion", "choices": choices, "usage": usage})

    def stream(self, base: dict[str, Any], text: str, usage: dict[str, int], body: Any) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        pieces = [text[i : i + 4] for i in range(0, len(text), 4)]
        events = []
        for i, piece in enumerate(pieces):
            delta = {"content": piece} if i else {"role": "assistant", "content": piece}
            choice = {"index": 0, "delta": delta, "finish_reason": None}
            events.append({**base, "object": "chat.completion.chunk", "choices": [choice]})
        stop = {"index": 0, "delta": {}, "finish_reason": "stop"}
        events.append({**base, "object": "chat.completion.chunk", "choices": [stop]})
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append(
                {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}
            )
        for event in events:
            self.chunk(f"data: {json.dumps(event)}\n\n".encode())
        self.chunk(b"data: [DONE]\n\n")
        self.chunk(b"")

    def chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


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
    assert r.model.name == "down"
    assert r.fallback is not None
    assert (r.fallback.requested_model, r.fallback.served_model) == ("down", "backup-model")
    assert "InternalServerError" in (r.fallback.reason or "")

    plain_client = client(server, pm)
    routed = plain_client.chat.completions.create(
        model="router/auto", messages=[{"role": "user", "content": "routed"}]
    )
    r = pm.verify(routed.choices[0].message.content).record
    assert r.fallback.served_model == "small-model" and r.fallback.requested_model == "router/auto"

    pinned = plain_client.chat.completions.create(
        model="gpt-x", messages=[{"role": "user", "content": "pinned"}]
    )
    r = pm.verify(pinned.choices[0].message.content).record
    assert r.fallback is None and r.extra["served_model"] == "gpt-x-2026-01-01"


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
