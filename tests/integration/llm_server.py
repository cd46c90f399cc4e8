"""A small OpenAI- and Anthropic-compatible HTTP server on 127.0.0.1 for the integration
tests (a real server the real SDKs talk to; nothing of theirs is mocked).

OpenAI: ``/v1/chat/completions`` (plain, SSE streaming, a tool call when ``tools`` are
given and the last message asks for the weather), ``/v1/completions``, ``/v1/embeddings``
and ``/v1/responses`` (plain and SSE). Anthropic: ``/v1/messages`` (plain, SSE, tool use).

Model names steer it: ``down`` answers 503, ``router/auto`` is answered by
``small-model`` (a router switching models), ``gpt-x`` by its pinned snapshot
``gpt-x-2026-01-01``, ``malformed`` returns a reply without ``choices``, ``failing``
(Responses API) a ``response.failed`` event. Replies are ``echo: <last user text>``.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SERVED = {"router/auto": "small-model", "gpt-x": "gpt-x-2026-01-01"}
OPENAI_USAGE = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
WEATHER_ARGS = {"city": "Paris"}


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in content or ():
        if isinstance(block, dict):
            if isinstance(block.get("text"), str):
                parts.append(block["text"])
            elif block.get("type") == "tool_result":
                parts.append(text_of(block.get("content")))
    return " ".join(parts)


def last_text(body: dict[str, Any]) -> str:
    if "messages" in body:
        return text_of(body["messages"][-1].get("content"))
    value = body.get("input", body.get("prompt", ""))
    if isinstance(value, list):
        value = text_of(value[-1].get("content")) if value and isinstance(value[-1], dict) else ""
    return str(value)


def reply_for(body: dict[str, Any]) -> str:
    return f"echo: {last_text(body)}"


def wants_tool(body: dict[str, Any]) -> bool:
    return bool(body.get("tools")) and "weather" in last_text(body)


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
            error = {"message": "overloaded", "type": "server_error"}
            if self.path.endswith("/messages"):
                error = {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
                return self.send(503, error)
            return self.send(503, {"error": error})
        served = SERVED.get(model, model)
        rid = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:12]
        if self.path.endswith("/messages"):
            return self.anthropic(body, served, "msg_" + rid)
        if self.path.endswith("/responses"):
            return self.responses_api(body, served, "resp_" + rid)
        base = {"id": "resp-" + rid, "created": 1700000000, "model": served}
        base["system_fingerprint"] = "fp_local_1"
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
            return self.chat_stream(base, text, body)
        if wants_tool(body):
            call = {
                "id": "call_1",
                "type": "function",
                "function": {
                    "name": body["tools"][0]["function"]["name"],
                    "arguments": json.dumps(WEATHER_ARGS),
                },
            }
            message = {"role": "assistant", "content": None, "tool_calls": [call]}
            choice = {"index": 0, "message": message, "finish_reason": "tool_calls"}
            out = {**base, "object": "chat.completion", "choices": [choice], "usage": OPENAI_USAGE}
            return self.send(200, out)
        n = body.get("n", 1)
        choices = [
            {
                "index": i,
                "message": {"role": "assistant", "content": text + ("" if i == 0 else f" #{i}")},
                "finish_reason": "stop",
            }
            for i in range(n)
        ]
        out = {**base, "object": "chat.completion", "choices": choices, "usage": OPENAI_USAGE}
        self.send(200, out)

    # ------------------------------------------------------------ streams
    def start_stream(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()

    def event(self, data: dict[str, Any], name: str | None = None) -> None:
        head = f"event: {name}\n" if name else ""
        self.chunk(f"{head}data: {json.dumps(data)}\n\n".encode())

    def chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def chat_stream(self, base: dict[str, Any], text: str, body: Any) -> None:
        self.start_stream()
        pieces = [text[i : i + 4] for i in range(0, len(text), 4)]
        for i, piece in enumerate(pieces):
            delta = {"content": piece} if i else {"role": "assistant", "content": piece}
            choice = {"index": 0, "delta": delta, "finish_reason": None}
            self.event({**base, "object": "chat.completion.chunk", "choices": [choice]})
        stop = {"index": 0, "delta": {}, "finish_reason": "stop"}
        self.event({**base, "object": "chat.completion.chunk", "choices": [stop]})
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {"choices": [], "usage": OPENAI_USAGE}
            self.event({**base, "object": "chat.completion.chunk", **usage})
        self.chunk(b"data: [DONE]\n\n")
        self.chunk(b"")

    # ------------------------------------------------------------ Responses API
    def responses_api(self, body: dict[str, Any], served: str, rid: str) -> None:
        text = reply_for(body)
        if body.get("instructions"):
            text += f" ({body['instructions']})"
        message = {
            "type": "message",
            "id": "msg_1",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }
        usage = {
            "input_tokens": 9,
            "output_tokens": 4,
            "total_tokens": 13,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        }
        done = {
            "id": rid,
            "object": "response",
            "created_at": 1700000000,
            "model": served,
            "status": "completed",
            "output": [message],
            "usage": usage,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
        }
        if not body.get("stream"):
            return self.send(200, done)
        self.start_stream()
        started = {**done, "status": "in_progress", "output": [], "usage": None}
        seq = 0
        self.event({"type": "response.created", "sequence_number": seq, "response": started})
        for piece in [text[i : i + 5] for i in range(0, len(text), 5)]:
            seq += 1
            delta = {"item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": piece}
            self.event({"type": "response.output_text.delta", "sequence_number": seq, **delta})
        seq += 1
        if body["model"] == "failing":
            failed = {**started, "status": "failed"}
            failed["error"] = {"code": "server_error", "message": "the model crashed"}
            self.event({"type": "response.failed", "sequence_number": seq, "response": failed})
        else:
            self.event({"type": "response.completed", "sequence_number": seq, "response": done})
        self.chunk(b"")

    # ------------------------------------------------------------ Anthropic Messages
    def anthropic(self, body: dict[str, Any], served: str, rid: str) -> None:
        blocks: list[dict[str, Any]] = [{"type": "text", "text": reply_for(body)}]
        stop = "end_turn"
        if wants_tool(body):
            tool = {"type": "tool_use", "id": "toolu_1", "name": body["tools"][0]["name"]}
            blocks = [{"type": "text", "text": "Checking."}, {**tool, "input": WEATHER_ARGS}]
            stop = "tool_use"
        usage = {"input_tokens": 11, "output_tokens": 5}
        message = {"id": rid, "type": "message", "role": "assistant", "model": served}
        if not body.get("stream"):
            done = {**message, "content": blocks, "stop_reason": stop, "stop_sequence": None}
            return self.send(200, {**done, "usage": usage})
        self.start_stream()
        first = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
        first["usage"] = {"input_tokens": 11, "output_tokens": 1}
        self.event({"type": "message_start", "message": first}, "message_start")
        for i, block in enumerate(blocks):
            if block["type"] == "text":
                empty = {"type": "text", "text": ""}
                pieces = [block["text"][j : j + 4] for j in range(0, len(block["text"]), 4)]
                deltas = [{"type": "text_delta", "text": p} for p in pieces]
            else:
                empty = {**block, "input": {}}
                raw = json.dumps(block["input"])
                deltas = [{"type": "input_json_delta", "partial_json": raw[:6]}]
                deltas.append({"type": "input_json_delta", "partial_json": raw[6:]})
            start = {"type": "content_block_start", "index": i, "content_block": empty}
            self.event(start, "content_block_start")
            for delta in deltas:
                event = {"type": "content_block_delta", "index": i, "delta": delta}
                self.event(event, "content_block_delta")
            self.event({"type": "content_block_stop", "index": i}, "content_block_stop")
        end = {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}}
        self.event({**end, "usage": {"output_tokens": 5}}, "message_delta")
        self.event({"type": "message_stop"}, "message_stop")
        self.chunk(b"")


@contextmanager
def running() -> Iterator[str]:
    """The server's base URL (``http://127.0.0.1:<port>``) while the block runs."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
