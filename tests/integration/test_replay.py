"""Replay with a tiny deterministic local torch model: match, mismatch and what differs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import provmark
from provmark.cli import main
from provmark.errors import ConfigError, NotFoundError
from provmark.verification.replay import Generators, context_differences, replay

torch = pytest.importorskip("torch", reason="replay tests need torch (pip install torch==2.13.0)")

# The user's generator module: a character-level model whose weights live in one file.
GENERATOR = """
from pathlib import Path

import torch

import provmark
from provmark.verification.replay import Generators

WEIGHTS = Path({weights!r})
VOCAB = 96  # printable ASCII


class Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(VOCAB, 16)
        self.out = torch.nn.Linear(16, VOCAB)

    def forward(self, token: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.embed(token)))


def build(seed: int) -> None:
    torch.manual_seed(seed)
    torch.save(Tiny().state_dict(), WEIGHTS)


def generate(prompt: str, *, max_tokens: int = 24, temperature: float = 0.8, seed: int = 0) -> str:
    model = Tiny()
    model.load_state_dict(torch.load(WEIGHTS, weights_only=True))
    model.eval()
    rng = torch.Generator().manual_seed(seed)
    token = torch.tensor(ord(prompt[-1]) - 32 if prompt else 0)
    out = []
    with torch.no_grad():
        for _ in range(max_tokens):
            probs = torch.softmax(model(token) / temperature, dim=-1)
            token = torch.multinomial(probs, 1, generator=rng)[0]
            out.append(chr(int(token) + 32))
    return "".join(out)


MODEL = provmark.Model("acme/tiny", version="1", weights=WEIGHTS)
generators = Generators()
generators.register(MODEL, generate)
"""


@pytest.fixture
def user(tmp_path: Path) -> ModuleType:
    path = tmp_path / "tiny_generator.py"
    path.write_text(GENERATOR.format(weights=str(tmp_path / "tiny.pt")))
    spec = importlib.util.spec_from_file_location("tiny_generator", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.build(seed=1)
    return module


def capture(tmp_path: Path, user: ModuleType, prompt: str = "Hello", **params: Any) -> str:
    with provmark.open(tmp_path / "provmark.db", home=tmp_path / "home") as pm:
        generate = pm.capture(model=user.MODEL)(user.generate)
        text = generate(prompt, **params)
        pm.flush()
        return pm.find(output=text, limit=1).records[0].record_id


def cli(tmp_path: Path, *argv: str) -> int:
    return main([*argv, "--db", str(tmp_path / "provmark.db"), "--home", str(tmp_path / "home")])


def test_model_is_deterministic(user: ModuleType) -> None:
    assert user.generate("Hi", seed=3) == user.generate("Hi", seed=3)
    assert user.generate("Hi", seed=3) != user.generate("Hi", seed=4)


def test_replay_matches_then_mismatches_when_the_weights_change(
    tmp_path: Path, user: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    rid = capture(tmp_path, user, seed=7, max_tokens=30)
    with provmark.open(tmp_path / "provmark.db", home=tmp_path / "home") as pm:
        result = replay(pm, rid, user.generators)
    assert result.status == "match", result.to_json()
    assert result.input_from == "snapshot" and result.differences == []

    spec = f"{tmp_path / 'tiny_generator.py'}:generators"
    assert cli(tmp_path, "replay", rid, "--generator", spec) == 0
    assert "MATCH" in capsys.readouterr().out

    user.build(seed=2)  # retrained: different weights
    assert cli(tmp_path, "replay", rid, "--generator", spec, "--json") == 1
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "mismatch"
    fields = {d["field"] for d in out["differences"]}
    assert {"model.digest", "model.files[tiny.pt].sha256"} <= fields


def test_replay_reports_package_and_gpu_differences(tmp_path: Path, user: ModuleType) -> None:
    rid = capture(tmp_path, user, seed=1)
    with provmark.open(tmp_path / "provmark.db", home=tmp_path / "home") as pm:
        payload = json.loads(pm.store.get(rid).payload)  # type: ignore[union-attr]
        payload["record_id"] = provmark.record.new_record_id()
        payload["context"]["packages"]["torch"] = "1.13.0"
        payload["context"]["gpu"] = [{"name": "NVIDIA A100-SXM4-80GB", "driver": "550.54"}]
        [other] = pm.ingest([payload])
        result = replay(pm, other, user.generators)
    assert result.match  # same output on this CPU, but the record says where it ran
    by_field = {d.field: d for d in result.differences}
    assert by_field["context.packages.torch"].recorded == "1.13.0"
    assert by_field["context.packages.torch"].now == torch.__version__
    assert by_field["context.gpu"].now == []
    assert context_differences(pm_record(tmp_path, rid)) == []


def pm_record(tmp_path: Path, rid: str) -> provmark.Record:
    with provmark.open(tmp_path / "provmark.db", home=tmp_path / "home") as pm:
        return pm.get(rid)


def test_replay_of_a_record_whose_model_is_gone(
    tmp_path: Path, user: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    rid = capture(tmp_path, user)
    (tmp_path / "tiny.pt").unlink()
    spec = f"{tmp_path / 'tiny_generator.py'}:generators"
    assert cli(tmp_path, "replay", rid, "--generator", spec) == 2
    err = capsys.readouterr().err
    assert "model 'acme/tiny' is gone" in err and "tiny.pt" in err
    with (
        provmark.open(tmp_path / "provmark.db", home=tmp_path / "home") as pm,
        pytest.raises(NotFoundError, match="no generator registered for model 'acme/tiny'"),
    ):
        replay(pm, rid, Generators())


def test_replay_needs_the_input_when_the_snapshot_was_redacted(
    tmp_path: Path, user: ModuleType
) -> None:
    prompt = "mail bob@example.com now"
    rid = capture(tmp_path, user, prompt=prompt)
    with provmark.open(tmp_path / "provmark.db", home=tmp_path / "home") as pm:
        record = pm.get(rid)
        if record.input.snapshot == prompt:
            pytest.skip("this store does not redact snapshots")
        with pytest.raises(ConfigError, match="redacted or truncated"):
            replay(pm, rid, user.generators)
        with pytest.raises(ConfigError, match="differs from the recorded input"):
            replay(pm, rid, user.generators, input="another prompt")
        assert replay(pm, rid, user.generators, input=prompt).match
    assert (
        cli(
            tmp_path,
            "replay",
            rid,
            "--generator",
            f"{tmp_path / 'tiny_generator.py'}:generators",
            "--input-text",
            prompt,
        )
        == 0
    )


def test_bad_generator_option(tmp_path: Path, user: ModuleType) -> None:
    rid = capture(tmp_path, user)
    assert cli(tmp_path, "replay", rid, "--generator", "no_such_module:x") == 2
    assert cli(tmp_path, "replay", rid, "--generator", "nocolon") == 2
