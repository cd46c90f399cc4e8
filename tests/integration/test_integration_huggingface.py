"""Hugging Face transformers with a tiny 2-layer GPT-2 built from a config with random
weights, saved with ``save_pretrained`` and loaded back from disk (no hub access)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import provmark
from provmark import ConfigError

torch = pytest.importorskip("torch", reason="torch is not installable here")
transformers = pytest.importorskip("transformers", reason="transformers is not installable here")
from provmark.integrations import huggingface as hf  # noqa: E402

pytestmark = pytest.mark.slow  # sets up a real tracker/repo/model: seconds

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

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
    folder = tmp_path_factory.mktemp("models") / "tiny-gpt2"
    transformers.GPT2LMHeadModel(config).save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def loaded(model_dir: Path) -> tuple[Any, Any]:
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir)
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    return model, tokenizer


def sha_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_model_identity_from_the_folder(model_dir: Path, loaded: tuple[Any, Any]) -> None:
    ident = hf.model_identity(loaded[0])
    assert ident.name == "tiny-gpt2" and ident.provider == "huggingface"
    with provmark.open(model_dir.parent / "x.db", home=model_dir.parent / "h") as pm:
        with pm.record(model=ident, input="x") as rec:
            rec.set_output("y")
        r = pm.get(rec.record_id or "")
    files = {f.path: f.sha256 for f in r.model.files}
    assert files["model.safetensors"] == sha_file(model_dir / "model.safetensors")
    assert files["config.json"] == sha_file(model_dir / "config.json")
    assert {"generation_config.json", "tokenizer.json", "tokenizer_config.json"} <= set(files)
    assert r.model.digest and r.model.digest.startswith("sha256:")
    assert hf.model_identity(model_dir, name="acme/tiny", revision="v1").revision == "v1"


def test_model_identity_of_a_hub_cache_snapshot(model_dir: Path, tmp_path: Path) -> None:
    """The hub cache layout (blobs + snapshot symlinks + refs), loaded offline by repo id."""
    repo = tmp_path / "hub" / "models--acme--tiny-gpt2"
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir()
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    for f in model_dir.iterdir():
        blob = repo / "blobs" / sha_file(f)
        shutil.copy(f, blob)
        os.symlink(os.path.relpath(blob, snapshot), snapshot / f.name)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        "acme/tiny-gpt2", cache_dir=tmp_path / "hub", local_files_only=True
    )
    ident = hf.model_identity(model, cache_dir=tmp_path / "hub")
    assert (ident.name, ident.revision) == ("acme/tiny-gpt2", COMMIT)
    assert Path(str(ident.directory)).resolve() == snapshot.resolve()
    with pytest.raises(ConfigError, match="no local files"):
        hf.model_identity("acme/not-here", cache_dir=tmp_path / "hub")


def test_wrapped_pipeline_records_and_verifies(pm: Any, loaded: tuple[Any, Any]) -> None:
    model, tokenizer = loaded
    pipe = hf.wrap_pipeline(
        transformers.pipeline("text-generation", model=model, tokenizer=tokenizer), pm
    )
    text = pipe("the quick", max_new_tokens=5, do_sample=False)[0]["generated_text"]
    r = pm.verify(text).record
    assert r.operation == "text_completion" and r.extra["task"] == "text-generation"
    assert r.model.name == "tiny-gpt2" and any(f.path == "model.safetensors" for f in r.model.files)
    assert r.params["max_new_tokens"] == 5 and r.params["do_sample"] is False
    assert r.input.snapshot == "the quick" and r.input.seed is None  # greedy: no seed needed


def test_seeded_sampling_is_recorded_and_reproducible(pm: Any, loaded: tuple[Any, Any]) -> None:
    model, tokenizer = loaded
    pipe = hf.wrap_pipeline(
        transformers.pipeline("text-generation", model=model, tokenizer=tokenizer), pm, seed=42
    )
    args = {"max_new_tokens": 6, "do_sample": True, "top_k": 20, "temperature": 0.7}
    first = pipe("the lazy", **args)[0]["generated_text"]
    second = pipe("the lazy", **args)[0]["generated_text"]
    assert first == second
    records = pm.find(output=first).records
    assert len(records) == 2 and {r.input.seed for r in records} == {"42"}
    assert records[0].params["top_k"] == 20 and records[0].params["temperature"] == 0.7


def test_wrapped_generate(pm: Any, loaded: tuple[Any, Any], model_dir: Path) -> None:
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir)
    tokenizer = loaded[1]
    hf.wrap_generate(model, pm, tokenizer=tokenizer)
    ids = tokenizer("the quick brown", return_tensors="pt")
    torch.manual_seed(7)
    out = model.generate(**ids, max_new_tokens=4, do_sample=True, top_k=5)
    r = pm.verify(out.tolist()).record
    assert r.output.media_type == "application/json"
    assert r.input.snapshot == "the quick brown" and r.input.seed == "7"
    assert r.params["max_new_tokens"] == 4 and r.params["top_k"] == 5
    assert r.usage.input_tokens == ids["input_ids"].shape[-1] and r.usage.output_tokens == 4

    # a pipeline over the same wrapped model makes one record per call, not two
    pipe = hf.wrap_pipeline(
        transformers.pipeline("text-generation", model=model, tokenizer=tokenizer), pm
    )
    pm.flush()
    before = len(pm.find(limit=100).records)
    pipe("the dog", max_new_tokens=3, do_sample=False)
    pm.flush()
    assert len(pm.find(limit=100).records) == before + 1

    hf.unwrap_generate(model)
    model.generate(**ids, max_new_tokens=2, do_sample=False)
    pm.flush()
    assert len(pm.find(limit=100).records) == before + 1


def test_failed_generation_is_an_error_record(pm: Any, model_dir: Path) -> None:
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir)
    hf.wrap_generate(model, pm)
    too_long = torch.ones((1, 80), dtype=torch.long)  # n_positions is 64
    with pytest.raises(Exception):  # noqa: B017 - whatever torch raises, it is recorded
        model.generate(too_long, max_new_tokens=2)
    pm.flush()
    (r,) = pm.find(status="error").records
    assert r.model.name == "tiny-gpt2" and r.error is not None


def test_bad_input_and_missing_library(pm: Any) -> None:
    with pytest.raises(ConfigError, match="must be a transformers Pipeline"):
        hf.wrap_pipeline(object(), pm)
    code = (
        "import sys; sys.modules['transformers'] = None\n"
        "from provmark.integrations import huggingface as h\n"
        "try:\n    h.wrap_pipeline(object(), None)\n"
        "except Exception as e:\n    print(type(e).__name__, e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert (
        out.stdout.startswith("ConfigError") and "pip install 'provmark[huggingface]'" in out.stdout
    )
