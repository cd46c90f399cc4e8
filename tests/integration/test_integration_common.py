"""What every integration shares: lazy imports with version ranges, hooks around emit and
the capture failure policy, request parameters and model-switch detection."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import pytest

import provmark
from provmark import CaptureError, ConfigError
from provmark.capture.core import Outcome
from provmark.integrations import common

MODULES = ["openai", "huggingface", "mlflow", "dvc", "wandb", "otel", "containers"]


def test_importing_an_integration_imports_no_library() -> None:
    heavy = ("openai", "transformers", "torch", "mlflow", "dvc", "wandb", "opentelemetry.sdk")
    code = (
        "import sys\n"
        + "".join(f"import provmark.integrations.{m}\n" for m in MODULES)
        + f"print([m for m in {heavy!r} if m in sys.modules])\n"
    )
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_require_names_the_extra_and_the_supported_range() -> None:
    with pytest.raises(ConfigError, match=r"pip install 'provmark\[x\]'"):
        common.require("no_such_module_here", extra="x", package="nope", minimum="1", below="2")
    with pytest.raises(ConfigError, match=r"supports pytest>=99\.0,<100; pytest .* is installed"):
        common.require("pytest", extra="x", package="pytest", minimum="99.0", below="100")
    assert common.require("pytest", extra="x", package="pytest", minimum="1", below="1000")
    assert common.version_tuple("2.13.0+cpu") == (2, 13, 0)
    assert common.version_tuple("v0.31.0rc1") == (0, 31, 0)


class Failing(common.Hook):
    def __init__(self, where: str) -> None:
        self.where = where

    def before(self, outcome: Outcome) -> None:
        if self.where == "before":
            raise RuntimeError("tracker down")

    def after(self, outcome: Outcome, record_id: str) -> None:
        if self.where == "after":
            raise RuntimeError("span gone")


class Tagging(common.Hook):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def before(self, outcome: Outcome) -> None:
        outcome.tags["run"] = "r1"

    def after(self, outcome: Outcome, record_id: str) -> None:
        self.seen.append(record_id)


def test_hooks_see_every_record_and_come_off_cleanly(pm: Any) -> None:
    tagging = Tagging()
    common.add_hook(pm, tagging)
    fn = pm.capture(model="m")(lambda p: p + "!")
    fn("decorated")
    with pm.record(model="m", input="x") as rec:
        rec.set_output("context manager")
    assert tagging.seen == [pm.verify("decorated!").record.record_id, rec.record_id]
    assert pm.get(rec.record_id).tags == {"run": "r1"}
    common.remove_hook(pm, tagging)
    assert "emit" not in vars(pm), "the instance's own emit is back"
    fn("after")
    assert pm.verify("after!").record.tags == {}


@pytest.mark.parametrize("where", ["before", "after"])
def test_a_failing_hook_follows_the_capture_policy(db_path: Path, home: Path, where: str) -> None:
    with provmark.open(db_path, home=home) as strict:
        common.add_hook(strict, Failing(where))
        with pytest.raises(CaptureError, match="Failing." + where), strict.record(model="m") as rec:
            rec.set_output("x")
        assert strict.capture_failures == 1
    with provmark.open(db_path, home=home, policy="best_effort") as lenient:
        common.add_hook(lenient, Failing(where))
        with lenient.record(model="m") as rec:
            rec.set_output("y")
        assert lenient.capture_failures == 1
        assert rec.record_id, "the record is still made, only the hook's part is missing"


def test_clean_params_and_same_model() -> None:
    params = common.clean_params(
        {
            "temperature": 0.2,
            "tools": [{"type": "function", "function": {"name": "f"}}],
            "callback": print,
            "user": "alice",
            "stop": ("\n",),
        },
        skip=frozenset({"user"}),
    )
    assert params["temperature"] == 0.2 and params["stop"] == ["\n"]
    assert len(params["tools_sha256"]) == 64 and "callback" not in params and "user" not in params
    assert common.same_model("gpt-4o", "gpt-4o-2024-08-06")
    assert common.same_model("meta-llama/Llama-3-8B", "Llama-3-8B")
    assert common.same_model("gemini-1.5-pro", "gemini-1.5-pro-002")
    assert common.same_model("llama3", "llama3:latest")
    assert not common.same_model("gpt-4o", "gpt-4o-mini-2024-07-18")
    assert not common.same_model("gpt-4", "gpt-4o")
    assert not common.same_model("router/auto", "small-model")
    assert common.same_model("m", None)


@pytest.mark.parametrize("name", MODULES)
def test_every_integration_module_imports(name: str) -> None:
    assert importlib.import_module(f"provmark.integrations.{name}").__doc__
