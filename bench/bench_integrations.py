"""Overhead each integration adds per call, on the caller's thread.

python bench/bench_integrations.py [--n 2000] [--only openai,otel,...]

Each case times the same call with and without the integration, interleaved (A, B,
A, B, ...) so that load from other work on the machine hits both alike, and reports
the difference of the medians and of the 99th percentiles (the per-call overhead p50
and p99). Records are signed and stored by provmark's writer thread in the background,
as in production. A library that is not installed is skipped with the reason. SDK
clients talk to an in-process httpx transport, so no socket time hides the wrapper's
cost; the cases of the newer integrations are in integration_cases.py.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import integration_cases
import provmark
from common import save, table

Case = tuple[Callable[[], Any], Callable[[], Any]]  # (bare, with the integration)


def measure(
    name: str, bare: Callable[[], Any], wrapped: Callable[[], Any], n: int
) -> dict[str, Any]:
    for _ in range(max(20, n // 20)):  # warm up caches, model hashing, the probe
        bare()
        wrapped()
    a, b = [], []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        bare()
        t1 = time.perf_counter_ns()
        wrapped()
        t2 = time.perf_counter_ns()
        a.append(t1 - t0)
        b.append(t2 - t1)
    a.sort()
    b.sort()

    def q(s: list[int], p: float) -> float:
        return s[min(len(s) - 1, int(p * len(s)))] / 1000

    return {
        "integration": name,
        "calls": n,
        "bare_p50_us": q(a, 0.5),
        "with_p50_us": q(b, 0.5),
        "overhead_p50_us": q(b, 0.5) - q(a, 0.5),
        "overhead_p99_us": q(b, 0.99) - q(a, 0.99),
    }


def openai_cases(pm: provmark.Provmark) -> dict[str, Case]:
    import httpx
    import openai

    from provmark.integrations import openai as pm_openai

    chat = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "bench-model",
        "system_fingerprint": "fp_1",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "ok " * 40},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 20, "completion_tokens": 40, "total_tokens": 60},
    }
    body = json.dumps(chat).encode()
    chunks = [
        {**chat, "object": "chat.completion.chunk", "choices": [
            {"index": 0, "delta": {"content": "tok "}, "finish_reason": None}]}
        for _ in range(20)
    ]  # fmt: skip
    stream_body = b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in chunks)
    stream_body += b"data: [DONE]\n\n"

    def handler(request: httpx.Request) -> httpx.Response:
        if b'"stream":true' in request.content.replace(b" ", b""):
            return httpx.Response(
                200, content=stream_body, headers={"content-type": "text/event-stream"}
            )
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})

    def make() -> Any:
        return openai.OpenAI(
            api_key="sk-bench",
            base_url="http://bench.invalid/v1",
            http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        )

    raw, wrapped = make(), pm_openai.instrument(make(), pm)
    messages = [{"role": "user", "content": "Summarise the quarterly report in one line."}]
    args = {"model": "bench-model", "messages": messages, "temperature": 0.2, "max_tokens": 64}

    def stream(client: Any) -> Callable[[], Any]:
        return lambda: list(client.chat.completions.create(**args, stream=True))

    return {
        "openai chat": (
            lambda: raw.chat.completions.create(**args),
            lambda: wrapped.chat.completions.create(**args),
        ),
        "openai chat stream (20 chunks)": (stream(raw), stream(wrapped)),
    }


def huggingface_cases(pm: provmark.Provmark, tmp: Path) -> dict[str, Case]:
    import torch
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from provmark.integrations import huggingface as hf

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<unk>", "<eos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(["the quick brown fox jumps over the lazy dog"] * 20, trainer)
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", eos_token="<eos>", pad_token="<eos>"
    )
    config = transformers.GPT2Config(
        vocab_size=fast.vocab_size,
        n_positions=64,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=fast.eos_token_id,
        eos_token_id=fast.eos_token_id,
    )
    torch.manual_seed(0)
    torch.set_num_threads(1)  # steadier timings on a shared 2-core machine
    folder = tmp / "tiny-gpt2"
    transformers.GPT2LMHeadModel(config).save_pretrained(folder)
    fast.save_pretrained(folder)
    raw_model = transformers.AutoModelForCausalLM.from_pretrained(folder)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    hf.wrap_generate(model, pm)
    ids = tokenizer("the quick brown", return_tensors="pt")
    gen = {"max_new_tokens": 4, "do_sample": False}
    raw_pipe = transformers.pipeline("text-generation", model=raw_model, tokenizer=tokenizer)
    pipe = hf.wrap_pipeline(
        transformers.pipeline("text-generation", model=raw_model, tokenizer=tokenizer), pm
    )
    return {
        "huggingface generate (4 tokens)": (
            lambda: raw_model.generate(**ids, **gen),
            lambda: model.generate(**ids, **gen),
        ),
        "huggingface pipeline (4 tokens)": (
            lambda: raw_pipe("the quick", **gen),
            lambda: pipe("the quick", **gen),
        ),
    }


def otel_cases(pm: provmark.Provmark) -> dict[str, Case]:
    from opentelemetry.sdk.trace import TracerProvider

    from provmark.integrations import otel

    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-x",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.response.id": "r-1",
        "gen_ai.usage.input_tokens": 20,
        "gen_ai.usage.output_tokens": 40,
        "gen_ai.output.messages": json.dumps(
            [{"role": "assistant", "parts": [{"type": "text", "content": "ok " * 40}]}]
        ),
    }
    plain_tracer = TracerProvider().get_tracer("bench")
    provider = TracerProvider()
    provider.add_span_processor(otel.span_processor(pm))
    tracer = provider.get_tracer("bench")

    def span(t: Any) -> Callable[[], None]:
        def run() -> None:
            with t.start_as_current_span("chat gpt-x", attributes=attrs):
                pass

        return run

    return {"otel GenAI span -> record": (span(plain_tracer), span(tracer))}


def hook_cases(pm: provmark.Provmark, tmp: Path) -> dict[str, Case]:
    """Hooks on ``pm.emit`` (MLflow/W&B run tags, DVC datasets, span links): a captured call
    with the hook vs the same call with no hook."""
    from provmark.integrations.common import remove_hook

    capture = pm.capture(model=provmark.Model("bench/model", version="1"))(lambda p: "out " * 20)
    cases: dict[str, Case] = {}
    hooks: list[Any] = []
    try:
        import mlflow

        from provmark.integrations import mlflow as pm_mlflow

        os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
        mlflow.set_tracking_uri(f"sqlite:///{tmp / 'mlflow.db'}")
        mlflow.set_experiment(experiment_id=mlflow.create_experiment(
            "bench", artifact_location=(tmp / "mlartifacts").as_uri()))  # fmt: skip
        mlflow.start_run()
        hooks.append(pm_mlflow.autolog(pm, bundles=False))
        cases["mlflow autolog (run tags)"] = toggled(pm, hooks[-1], capture)
    except ImportError as exc:
        print(f"skipped mlflow: {exc}")
    try:
        import wandb

        from provmark.integrations import wandb as pm_wandb

        os.environ.update(WANDB_MODE="offline", WANDB_SILENT="true")
        wandb.init(project="bench", dir=str(tmp))
        hooks.append(pm_wandb.autolog(pm, bundles=False))
        cases["wandb autolog (run tags)"] = toggled(pm, hooks[-1], capture)
    except ImportError as exc:
        print(f"skipped wandb: {exc}")
    try:
        import subprocess

        from provmark.integrations import dvc as pm_dvc

        repo = tmp / "dvc"
        (repo / "data").mkdir(parents=True)
        (repo / "data" / "train.csv").write_text("a,b\n" * 1000)
        for cmd in (["init", "--no-scm", "-q"], ["add", "-q", "data/train.csv"]):
            subprocess.run([sys.executable, "-m", "dvc", *cmd], cwd=repo, check=True)
        datasets = pm_dvc.Datasets(repo)
        hooks.append(pm_dvc.DatasetHook(datasets))
        from provmark.integrations.common import add_hook

        add_hook(pm, hooks[-1])
        cases["dvc track (1 dataset)"] = toggled(pm, hooks[-1], capture)
    except ImportError as exc:
        print(f"skipped dvc: {exc}")
    try:
        from opentelemetry.sdk.trace import TracerProvider

        from provmark.integrations import otel

        tracer = TracerProvider().get_tracer("bench")
        hooks.append(otel.link_spans(pm))

        def in_span(p: str) -> Any:
            with tracer.start_as_current_span("work"):
                return capture(p)

        cases["otel link_spans (record id on span)"] = toggled(pm, hooks[-1], in_span)
    except ImportError as exc:
        print(f"skipped otel: {exc}")

    def cleanup() -> None:
        for hook in hooks:
            remove_hook(pm, hook)
        if "mlflow" in sys.modules:
            sys.modules["mlflow"].end_run()
        if "wandb" in sys.modules and sys.modules["wandb"].run is not None:
            sys.modules["wandb"].run.finish()

    cases["_cleanup"] = (cleanup, lambda: None)
    return cases


def toggled(pm: provmark.Provmark, hook: Any, fn: Callable[[str], Any]) -> Case:
    """(``fn`` with no hook, ``fn`` with only ``hook``) through the same emit path."""
    from provmark.integrations.common import EmitHooks

    emit = vars(pm)["emit"]
    assert isinstance(emit, EmitHooks)

    def run(hooks: tuple[Any, ...]) -> Callable[[], Any]:
        def call() -> Any:
            saved = emit.hooks
            emit.hooks = hooks
            try:
                return fn("prompt")
            finally:
                emit.hooks = saved

        return call

    return run(()), run((hook,))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    groups = ["openai", "huggingface", "otel", "hooks", *integration_cases.BUILDERS, "diffusers"]
    ap.add_argument("--only", help="comma-separated: " + ",".join(groups))
    args = ap.parse_args()
    wanted = set(args.only.split(",")) if args.only else set(groups)
    rows = []
    with (
        tempfile.TemporaryDirectory() as d,
        provmark.open(Path(d) / "bench.db", home=d, max_queue=200_000, batch_size=2048) as pm,
    ):
        tmp = Path(d)
        builders: list[tuple[str, Callable[[], dict[str, Case]], int]] = [
            ("openai", lambda: openai_cases(pm), args.n),
            ("huggingface", lambda: huggingface_cases(pm, tmp), max(50, args.n // 20)),
            ("otel", lambda: otel_cases(pm), args.n),
            ("hooks", lambda: hook_cases(pm, tmp), args.n),
            *((name, functools.partial(build, pm), args.n)
              for name, build in integration_cases.BUILDERS.items()),
            ("diffusers", lambda: integration_cases.diffusers_cases(pm, tmp),
             max(30, args.n // 40)),
        ]  # fmt: skip
        for group, build, n in builders:
            if group not in wanted:
                continue
            try:
                cases = build()
            except ImportError as exc:
                print(f"skipped {group}: {exc}")
                continue
            cleanup = [c for name, c in cases.items() if name.startswith("_cleanup")]
            for name, (bare, wrapped) in cases.items():
                if not name.startswith("_cleanup"):
                    rows.append(measure(name, bare, wrapped, n))
                    pm.flush()
            for undo, _ in cleanup:
                undo()
        stats = pm.stats()
    print(table("Per-call overhead of each integration (us)", rows))
    failures = stats["capture_failures"]
    print(f"\nrecords written: {stats.get('records', '?')}, capture failures: {failures}")
    save("integrations", {"n": args.n, "rows": rows})


if __name__ == "__main__":
    main()
