"""diffusers: every image a pipeline makes gets a record (model files hashed, seed, scheduler),
optionally saved and marked with a C2PA manifest.

    pipe = provmark.integrations.diffusers.wrap_pipeline(
        DiffusionPipeline.from_pretrained("models/tiny-sd"), pm, seed=42, save_to="out/")
    images = pipe("a lighthouse at dusk", num_inference_steps=20).images
    pm.verify(Path("out/<name>.png"))                    # or the PNG bytes of the image

One record per image: operation ``image_generation``; ``model`` = every file of the
pipeline's folder (``model_index.json``, each component's config and weights, the
scheduler config) and their digest; ``input`` the prompt (``{prompt, negative_prompt}``
when there is one; none for unconditional pipelines); ``params`` the call's settings
(``num_inference_steps``, ``guidance_scale``, ``height``, ``width``, ``eta``...) plus
``scheduler`` (its class) and ``scheduler_config_sha256``; ``input.seed`` the seed of the
generator the call used; ``output`` the image as PNG (a file under ``save_to``, or the
PNG bytes ``image.save(path)`` writes with default options).
"""

from __future__ import annotations

import hashlib
import io
import itertools
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..canonical import canonical_bytes
from ..capture.model import Model
from ..errors import ConfigError
from .common import CaptureTarget, FolderModel, clean_params, plain, policy_failure, require
from .runs import jsonable

MINIMUM, BELOW = "0.30", "1"
_INPUT_KEYS = ("prompt", "negative_prompt", "prompt_2", "negative_prompt_2")
_SKIP = frozenset(
    {
        *_INPUT_KEYS,
        "generator",
        "latents",
        "prompt_embeds",
        "negative_prompt_embeds",
        "callback",
        "callback_on_step_end",
        "callback_on_step_end_tensor_inputs",
        "cross_attention_kwargs",
        "return_dict",
        "image",
        "mask_image",
        "ip_adapter_image",
    }
)


def _diffusers() -> Any:
    return require(
        "diffusers", extra="diffusers", package="diffusers", minimum=MINIMUM, below=BELOW
    )


def pipeline_identity(pipe: Any, name: str | None = None, version: str | None = None) -> Model:
    """A :class:`provmark.Model` for a pipeline loaded from (or saved to) a local folder:
    every file in it is hashed. Raises ``ConfigError`` for a pipeline with no folder."""
    folder = getattr(pipe, "name_or_path", None) or getattr(pipe.config, "_name_or_path", None)
    path = Path(str(folder)) if folder else None
    if path is None or not (path / "model_index.json").is_file():
        raise ConfigError(
            "diffusers: the pipeline has no local folder with a model_index.json "
            f"({folder!r}); save it with pipe.save_pretrained(folder) and load it from there, "
            "or pass model=provmark.Model(...)"
        )
    return FolderModel(name or path.name, version=version, provider="diffusers", directory=path)


def png_bytes(image: Any) -> bytes:
    """The PNG ``image.save(path)`` writes with default options."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def scheduler_params(pipe: Any) -> dict[str, Any]:
    scheduler = getattr(pipe, "scheduler", None)
    if scheduler is None:
        return {}
    config = jsonable(dict(getattr(scheduler, "config", {}) or {}))
    digest = hashlib.sha256(canonical_bytes(config)).hexdigest()
    return {"scheduler": type(scheduler).__name__, "scheduler_config_sha256": digest}


class WrappedPipeline:
    """Calls the pipeline and records each image; every other attribute is the pipeline's."""

    def __init__(
        self,
        pipe: Any,
        pm: CaptureTarget,
        model: Model,
        seed: int | None,
        save_to: Path | None,
        c2pa: tuple[Any, Any] | None,
        tags: dict[str, str] | None,
    ) -> None:
        self.pipe, self.pm, self.model, self.seed = pipe, pm, model, seed
        self.save_to, self.c2pa, self.tags = save_to, c2pa, dict(tags or {})
        self.last_record_ids: list[str] = []
        self.last_paths: list[Path] = []
        self._names = itertools.count()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pipe, name)

    def _generator(self, kwargs: dict[str, Any]) -> Any:
        import torch

        given = kwargs.get("generator")
        if given is None:
            generator = torch.Generator(device="cpu")
            if self.seed is not None:
                generator.manual_seed(self.seed)
            else:
                generator.seed()  # a fresh random seed, recorded
            kwargs["generator"] = generator
            return generator
        return given[0] if isinstance(given, Sequence) and given else given

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if args:  # the prompt, positionally
            kwargs["prompt"] = args[0]
            args = args[1:]
        generator = self._generator(kwargs)
        seed = generator.initial_seed()
        prompts = {k: kwargs[k] for k in _INPUT_KEYS if kwargs.get(k) is not None}
        inp: Any = prompts.get("prompt") if list(prompts) == ["prompt"] else (prompts or None)
        params = {**clean_params(kwargs, _SKIP), **scheduler_params(self.pipe)}
        started = time.time_ns()
        result = self.pipe(*args, **kwargs)
        images = list(getattr(result, "images", None) or [])
        self.last_record_ids, self.last_paths = [], []
        for index, image in enumerate(images):
            try:
                self._record(image, index, len(images), inp, params, seed, started)
            except Exception as exc:
                policy_failure(self.pm, "recording a diffusers image", exc)
        return result

    def _record(
        self,
        image: Any,
        index: int,
        count: int,
        inp: Any,
        params: dict[str, Any],
        seed: int,
        started: int,
    ) -> None:
        output: Any
        if not hasattr(image, "save"):
            raise ConfigError("diffusers: only PIL images (output_type='pil') are recorded")
        if self.save_to is not None:
            self.save_to.mkdir(parents=True, exist_ok=True)
            path = self.save_to / f"{time.strftime('%Y%m%d-%H%M%S')}-{next(self._names)}.png"
            path.write_bytes(png_bytes(image))
            output = path
        else:
            output = png_bytes(image)
        tags = {**self.tags, "diffusers.pipeline": type(self.pipe).__name__}
        if count > 1:
            tags["diffusers.image_index"] = str(index)
        with self.pm.record(
            model=self.model,
            input=plain(inp),
            params=params,
            operation="image_generation",
            tags=tags,
            media_type="image/png",
        ) as rec:
            rec.outcome.started_ns = started
            rec.outcome.seed = seed
            rec.set_output(output)
        if rec.record_id:
            self.last_record_ids.append(rec.record_id)
        if self.save_to is not None:
            self.last_paths.append(output)
            if self.c2pa is not None and rec.record_id:
                self._mark(output, rec.record_id)

    def _mark(self, path: Path, record_id: str) -> None:
        from ..export import c2pa as c2pa_export

        flush = getattr(self.pm, "flush", None)
        if callable(flush):
            flush()  # the manifest carries the signed, logged record
        record = self.pm.get(record_id)  # type: ignore[attr-defined]
        assert self.c2pa is not None
        chain, key = self.c2pa
        c2pa_export.mark(path, path, record, chain, key)


def wrap_pipeline(
    pipe: Any,
    pm: CaptureTarget,
    *,
    model: Model | None = None,
    version: str | None = None,
    seed: int | None = None,
    save_to: str | Path | None = None,
    c2pa: tuple[Any, Any] | None = None,
    tags: dict[str, str] | None = None,
) -> WrappedPipeline:
    """Record every image ``pipe`` (a diffusers ``DiffusionPipeline``) makes into ``pm``.

    ``seed`` seeds a CPU generator for each call that passes none (else a fresh random
    seed is drawn and recorded); ``save_to`` writes each image there as PNG and records
    the file; ``c2pa=(cert_chain, key)`` (PEM bytes or paths, see ``provmark c2pa
    dev-cert``) then signs a C2PA manifest naming the record into each saved file (its
    disclosure names the model's ``version``, which ``c2pa=`` therefore needs).
    """
    _diffusers()
    if c2pa is not None and save_to is None:
        raise ConfigError("wrap_pipeline: c2pa= marks saved files: give save_to= too")
    identity = model or pipeline_identity(pipe, version=version)
    if c2pa is not None and identity.version is None:
        raise ConfigError(
            "wrap_pipeline: c2pa= needs the model's version (the manifest's AI disclosure "
            "names it): pass version='...'"
        )
    folder = Path(save_to) if save_to is not None else None
    return WrappedPipeline(pipe, pm, identity, seed, folder, c2pa, tags)
