"""Capture in every form, on a real SQLite store with real keys."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

import provmark
from provmark import CaptureError, Model, Provmark


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_sync_decorator_records_everything(pm: Provmark, tmp_path: Path) -> None:
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"w" * 4096)
    model = Model("acme/summarizer", version="3.2", provider="acme", weights=weights)

    @pm.capture(model=model, tags={"app": "test"})
    def summarize(text: str, *, temperature: float = 0.2, seed: int = 7) -> str:
        return text.upper()

    with pm.acting_for("alice"):
        out = summarize("hello world", temperature=0.5)
    v = pm.verify(out)
    r = v.record
    assert r.output is not None and r.output.sha256 == sha("HELLO WORLD")
    assert r.input.sha256 == sha("hello world") and r.input.snapshot == "hello world"
    assert r.input.seed == "7"
    assert r.params == {"temperature": 0.5, "seed": 7}
    assert r.model.files[0].sha256 == hashlib.sha256(b"w" * 4096).hexdigest()
    assert r.model.digest and r.model.digest.startswith("sha256:")
    assert r.actor.user_id == "alice" and r.tags == {"app": "test"}
    assert r.context.python and r.context.hostname
    assert r.usage is not None and r.usage.latency_ms is not None
    assert r.signature is not None and r.log is not None
    assert r.started_at is not None and r.started_at <= r.generated_at
    assert r.generated_at.endswith("Z") and len(r.generated_at) == 27


def test_async_function(pm: Provmark, model: Model) -> None:
    @pm.capture(model=model, operation="chat")
    async def chat(prompt: str) -> str:
        await asyncio.sleep(0)
        return f"echo {prompt}"

    out = asyncio.run(chat("hi"))
    assert pm.verify(out).record.operation == "chat"


def test_generator_is_hashed_incrementally(pm: Provmark, model: Model) -> None:
    @pm.capture(model=model)
    def stream(prompt: str) -> Iterator[str]:
        yield from ["a", "b", "c"]

    assert "".join(stream("x")) == "abc"
    assert pm.verify("abc").record.status == "ok"


def test_async_generator(pm: Provmark, model: Model) -> None:
    @pm.capture(model=model)
    async def stream(prompt: str) -> AsyncIterator[bytes]:
        for part in (b"x", b"y"):
            yield part

    async def consume() -> bytes:
        return b"".join([c async for c in stream("p")])

    assert pm.verify(asyncio.run(consume())).record.output.size == 2  # type: ignore[union-attr]


def test_failed_generation_is_recorded_with_error_type(pm: Provmark, model: Model) -> None:
    @pm.capture(model=model)
    def broken(prompt: str) -> str:
        raise TimeoutError("model timed out")

    with pytest.raises(TimeoutError):
        broken("x")
    (r,) = pm.find(status="error").records
    assert r.error is not None and r.error.type == "TimeoutError" and r.output is None


def test_stream_closed_early_is_recorded(pm: Provmark, model: Model) -> None:
    @pm.capture(model=model)
    def stream(prompt: str) -> Iterator[str]:
        yield from ["a", "b", "c"]

    gen = stream("x")
    next(gen)
    gen.close()
    (r,) = pm.find(status="error").records
    assert (
        r.error is not None and r.error.type == "GeneratorExit" and r.output and r.output.size == 1
    )


def test_context_manager(pm: Provmark, model: Model) -> None:
    with pm.record(model=model, input="prompt", params={"top_p": 0.9}) as rec:
        rec.set_output("answer")
        rec.set_usage(input_tokens=3, output_tokens=1)
        rec.set_fallback("acme/big", "acme/small", "rate limited")
    r = pm.get(rec.record_id or "")
    assert r.params == {"top_p": 0.9} and r.usage and r.usage.output_tokens == 1
    assert r.fallback and r.fallback.served_model == "acme/small"


def test_lineage_parents(pm: Provmark, model: Model) -> None:
    with pm.record(model=model, input="a") as first:
        first.set_output("draft")
    with pm.record(model=model, input="draft", parents=[first.record_id]) as second:
        second.set_output("final")
    assert pm.verify("final").record.parents == [first.record_id]


def test_strict_policy_refuses_unserialisable_params(pm: Provmark, model: Model) -> None:
    @pm.capture(model=model)
    def gen(prompt: str, *, callback: object = None) -> str:
        return "x"

    with pytest.raises(CaptureError, match=r"params\.callback"):
        gen("p", callback=object())
    assert pm.stats()["capture_failures"] == 1


def test_best_effort_returns_output_and_counts(db_path: Path, home: Path, model: Model) -> None:
    with provmark.open(db_path, home=home, policy="best_effort") as pm:

        @pm.capture(model=model)
        def gen(prompt: str, *, blob: str = "") -> str:
            return "x"

        assert gen("p", blob="y" * 100_000) == "x"
        assert pm.stats()["capture_failures"] == 1
        assert pm.stats()["records"] == 0


def test_unhashable_output_needs_an_encoder(pm: Provmark, model: Model) -> None:
    class Image:
        def __init__(self, data: bytes) -> None:
            self.data = data

    @pm.capture(model=model, media_type="image/x-raw")
    def draw(prompt: str) -> Image:
        return Image(b"pixels")

    with pytest.raises(CaptureError, match="register an encoder"):
        draw("cat")
    pm.encoders.register(Image, lambda im: im.data)
    draw("cat")
    assert pm.verify(b"pixels").record.output.media_type == "image/x-raw"  # type: ignore[union-attr]


def test_weights_hashed_once_per_process(pm: Provmark, tmp_path: Path) -> None:
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"1" * 1000)
    m = Model("m", weights=weights)
    pm.capture(model=m)(lambda p: p)
    cache = pm._hash_cache  # the one cache of this instance
    assert len(cache._cache) == 1
    pm.capture(model=Model("m", weights=weights))(lambda p: p)
    assert len(cache._cache) == 1


def test_redactor_and_hashed_user_ids(db_path: Path, home: Path, model: Model) -> None:
    class Upper:
        def redact_text(self, text: str) -> object:
            return type("R", (), {"text": text.replace("alice@example.com", "[EMAIL]")})()

    with provmark.open(db_path, home=home, redactor=Upper(), hash_user_ids=True) as pm:
        with pm.acting_for("alice"), pm.record(model=model, input="mail alice@example.com") as rec:
            rec.set_output("ok")
        r = pm.get(rec.record_id or "")
    assert r.input.snapshot == "mail [EMAIL]"
    assert r.actor.user_id and r.actor.user_id.startswith("hmac-sha256:")
    assert r.input.sha256 == sha("mail alice@example.com"), "the hash is of the real input"


def test_find_filters_and_cursor(pm: Provmark, model: Model) -> None:
    other = Model("acme/other")
    for i in range(7):
        with pm.record(
            model=model if i % 2 else other, input=str(i), tags={"n": str(i % 3)}
        ) as rec:
            rec.set_output(f"out {i}")
    assert len(pm.find(model="acme/other").records) == 4
    assert len(pm.find(tags={"n": "0"}).records) == 3
    assert pm.find(output="out 3").records[0].input.snapshot == "3"
    seen = []
    cursor = None
    while True:
        page = pm.find(limit=3, cursor=cursor)
        seen += [r.record_id for r in page.records]
        cursor = page.next_cursor
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 7
    assert seen == sorted(seen, reverse=True)
    assert len(pm.find(since="1h").records) == 7
    assert pm.find(until="1h").records == []
    with pytest.raises(provmark.ConfigError, match="since"):
        pm.find(since="last tuesday")
