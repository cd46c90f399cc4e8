"""Hugging Face transformers: ``pipeline(...)`` and ``model.generate(...)`` make records.

    pipe = provmark.integrations.huggingface.wrap_pipeline(pipeline("text-generation",
                                                                    model=path), pm)
    text = pipe("Once upon a time", max_new_tokens=20)[0]["generated_text"]
    pm.verify(text)

Model identity comes from the model's local folder (``model_identity``): the SHA-256
of every safetensors/weight file and of config.json, generation_config.json and the
tokenizer files, plus the hub repo and commit when the folder is a hub cache snapshot
(``.../models--org--name/snapshots/<commit>``) or the config knows its commit.
The record's params are the effective generation config (the model's, updated with
the call's arguments); the seed is the one given to the wrapper (applied with
``transformers.set_seed`` before each call) or, when sampling without one,
``torch.initial_seed()``.
"""

from __future__ import annotations

import contextvars
import copy
import functools
import json
import re
from pathlib import Path
from typing import Any

from ..capture.model import Model
from ..errors import ConfigError
from .common import CaptureTarget, clean_params, plain, policy_failure, require

MINIMUM, BELOW = "4.40", "6"
_SNAPSHOT = re.compile(r"models--(?P<org>[^/]+?)--(?P<name>[^/]+)/snapshots/(?P<rev>[0-9a-f]{40})")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_TASK_OPERATION = {
    "text-generation": "text_completion",
    "text2text-generation": "text_completion",
    "summarization": "summarization",
    "translation": "translation",
    "feature-extraction": "embeddings",
}
_SKIP_CONFIG = frozenset({"transformers_version"})


def _transformers() -> Any:
    return require(
        "transformers", extra="huggingface", package="transformers", minimum=MINIMUM, below=BELOW
    )


def model_identity(
    model: Any,
    *,
    name: str | None = None,
    revision: str | None = None,
    version: str | None = None,
    cache_dir: str | Path | None = None,
) -> Model:
    """A :class:`provmark.Model` for a loaded model, a pipeline or a model folder path.

    Raises :class:`ConfigError` when the model's files cannot be found locally (pass
    the folder, or a model loaded from one).
    """
    path: Any = model
    config = None
    if hasattr(model, "model") and hasattr(model, "task"):  # a pipeline
        model = model.model
    if not isinstance(model, str | Path):
        config = getattr(model, "config", None)
        path = getattr(model, "name_or_path", None) or getattr(config, "_name_or_path", None)
    if not path:
        raise ConfigError("model_identity: the model has no name_or_path; pass its folder")
    folder = Path(path)
    if not folder.is_dir():
        commit = revision or getattr(config, "_commit_hash", None)
        folder = _cached_snapshot(str(path), commit, cache_dir)
    match = _SNAPSHOT.search(folder.resolve().as_posix()) or _SNAPSHOT.search(folder.as_posix())
    if match:
        name = name or f"{match['org']}/{match['name']}"
        revision = revision or match["rev"]
    commit = getattr(config, "_commit_hash", None)
    if revision is None and isinstance(commit, str) and _COMMIT.match(commit):
        revision = commit
    if name is None:
        declared = _declared_name(folder)
        name = declared or folder.resolve().name
    return Model(name, version=version, provider="huggingface", revision=revision, directory=folder)


def _declared_name(folder: Path) -> str | None:
    """``_name_or_path`` of config.json when it is a hub id, not a local path."""
    try:
        declared = json.loads((folder / "config.json").read_text()).get("_name_or_path")
    except (OSError, ValueError):
        return None
    is_hub_id = (
        isinstance(declared, str)
        and bool(declared)
        and not Path(declared).is_absolute()
        and declared.count("/") <= 1
        and not Path(declared).exists()
    )
    return declared if is_hub_id else None


def _cached_snapshot(repo_id: str, revision: str | None, cache_dir: str | Path | None) -> Path:
    from huggingface_hub import try_to_load_from_cache  # a dependency of transformers

    found = try_to_load_from_cache(repo_id, "config.json", cache_dir=cache_dir, revision=revision)
    if isinstance(found, str):
        return Path(found).parent
    raise ConfigError(
        f"model_identity: no local files for {repo_id!r}; pass the model folder "
        "(or load the model from a folder) so its weights can be hashed"
    )


def generation_params(model: Any, base: Any, call: dict[str, Any]) -> dict[str, Any]:
    """The effective generation config as record params (non-default values only)."""
    config = copy.deepcopy(base if base is not None else model.generation_config)
    unused = config.update(**call)
    values = {
        k: v
        for k, v in config.to_diff_dict().items()
        if not k.startswith("_") and k not in _SKIP_CONFIG
    }
    values.update({k: v for k, v in unused.items() if not k.startswith("_")})
    return clean_params(values, frozenset({"generation_config", "streamer", "logits_processor"}))


class _Seeding:
    def __init__(self, seed: int | None) -> None:
        self.seed = seed

    def apply(self, sampling: bool) -> int | None:
        if self.seed is not None:
            _transformers().set_seed(self.seed)
            return self.seed
        if sampling:
            import torch

            return int(torch.initial_seed())
        return None


class _Guard:
    """Keeps a wrapped ``generate`` called by a wrapped pipeline from recording twice."""

    def __init__(self) -> None:
        self.inside: contextvars.ContextVar[bool] = contextvars.ContextVar(
            "provmark_hf_inside", default=False
        )


def wrap_generate(
    model: Any,
    pm: CaptureTarget,
    *,
    identity: Model | None = None,
    tokenizer: Any = None,
    seed: int | None = None,
    tags: dict[str, str] | None = None,
) -> Any:
    """Record every ``model.generate(...)``; returns ``model`` (patched in place).

    The output hashed is the generated token ids as a JSON list of lists
    (``pm.verify(output_ids.tolist())``). With ``tokenizer`` the input snapshot is
    the decoded prompt instead of token ids.
    """
    _transformers()
    ident = identity or model_identity(model)
    original = model.generate
    seeding = _Seeding(seed)
    guard = _guard_of(model)

    @functools.wraps(original)
    def generate(*args: Any, **kwargs: Any) -> Any:
        if guard.inside.get():
            return original(*args, **kwargs)
        ids = kwargs.get("input_ids", args[0] if args else None)
        call = {k: v for k, v in kwargs.items() if k not in ("input_ids", "attention_mask")}
        try:
            params = generation_params(model, kwargs.get("generation_config"), call)
            prompt = _token_lists(ids)
            if tokenizer is not None and prompt is not None:
                decoded = tokenizer.batch_decode(prompt, skip_special_tokens=True)
                prompt = decoded[0] if len(decoded) == 1 else decoded
        except Exception as exc:
            policy_failure(pm, "reading the generate() arguments", exc)
            return original(*args, **kwargs)
        with pm.record(
            model=ident, input=prompt, params=params, operation="text_completion", tags=tags
        ) as rec:
            rec.outcome.seed = seeding.apply(bool(params.get("do_sample")))
            out = original(*args, **kwargs)
            sequences = getattr(out, "sequences", out)
            rec.set_output(sequences.tolist(), media_type="application/json")
            rec.set_usage(**_token_usage(ids, sequences))
        return out

    model.generate = generate
    model._provmark_original_generate = original
    return model


def _guard_of(model: Any) -> _Guard:
    guard = getattr(model, "_provmark_guard", None)
    if not isinstance(guard, _Guard):
        guard = _Guard()
        model._provmark_guard = guard
    return guard


def _token_lists(ids: Any) -> list[list[int]] | None:
    if ids is None:
        return None
    lists = ids.tolist() if hasattr(ids, "tolist") else ids
    if lists and isinstance(lists[0], int):
        lists = [lists]
    return [list(map(int, row)) for row in lists]


def _token_usage(ids: Any, sequences: Any) -> dict[str, int]:
    try:
        prompt = int(ids.shape[-1]) * int(ids.shape[0])
        total = int(sequences.shape[-1]) * int(sequences.shape[0])
    except (AttributeError, IndexError, TypeError):
        return {}
    return {"input_tokens": prompt, "output_tokens": max(total - prompt, 0)}


class WrappedPipeline:
    """A pipeline whose calls make records; anything else is passed through."""

    def __init__(
        self,
        pipe: Any,
        pm: CaptureTarget,
        identity: Model,
        seed: int | None,
        tags: dict[str, str] | None,
    ) -> None:
        self.pipeline = pipe
        self.pm = pm
        self.identity = identity
        self.operation = _TASK_OPERATION.get(pipe.task, pipe.task.replace("-", "_"))
        self._seeding = _Seeding(seed)
        self._tags = tags
        self._guard = _guard_of(pipe.model)

    def __call__(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        pipe = self.pipeline
        try:
            base = getattr(pipe, "generation_config", None)
            given = {**getattr(pipe, "_forward_params", {}), **kwargs}
            params = generation_params(pipe.model, base, given)
        except Exception as exc:
            policy_failure(self.pm, "reading the pipeline arguments", exc)
            return pipe(inputs, *args, **kwargs)
        with self.pm.record(
            model=self.identity,
            input=plain(inputs),
            params=params,
            operation=self.operation,
            tags=self._tags,
        ) as rec:
            rec.outcome.seed = self._seeding.apply(bool(params.get("do_sample")))
            token = self._guard.inside.set(True)
            try:
                result = pipe(inputs, *args, **kwargs)
            finally:
                self._guard.inside.reset(token)
            rec.set_output(pipeline_output(result))
            rec.outcome.extra["task"] = pipe.task
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pipeline, name)


def pipeline_output(result: Any) -> Any:
    """One input, one text result -> that text; anything else -> the JSON of the result."""
    item = result
    while isinstance(item, list) and len(item) == 1:
        item = item[0]
    if isinstance(item, dict) and len(item) == 1:
        (value,) = item.values()
        if isinstance(value, str):
            return value
    return plain(result)


def wrap_pipeline(
    pipe: Any,
    pm: CaptureTarget,
    *,
    identity: Model | None = None,
    seed: int | None = None,
    tags: dict[str, str] | None = None,
) -> WrappedPipeline:
    """Record every call of a transformers ``pipeline``.

    The output hashed is the text when one input gave one text (``generated_text``,
    ``summary_text``, ...); otherwise the JSON of the whole result.
    """
    tf = _transformers()
    if not isinstance(pipe, tf.Pipeline):
        raise ConfigError(
            f"wrap_pipeline(pipe): pipe must be a transformers Pipeline, not {type(pipe).__name__}"
        )
    return WrappedPipeline(pipe, pm, identity or model_identity(pipe.model), seed, tags)


def unwrap_generate(model: Any) -> Any:
    original = vars(model).pop("_provmark_original_generate", None)
    if original is not None:
        vars(model).pop("generate", None)
    return model
