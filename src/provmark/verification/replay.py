"""Replay a recorded generation and compare output hashes.

Register the function that generates for a model, with the model's current
identity (its weights are hashed now, as at capture)::

    generators = provmark.verification.replay.Generators()

    @generators.register(provmark.Model("acme/tiny", weights="tiny.pt"))
    def generate(prompt: str, *, max_tokens: int = 16, seed: int = 0) -> str: ...

    result = provmark.verification.replay.replay(pm, "pm-20260105-3fa2c1", generators)
    result.status        # "match" or "mismatch"
    result.differences   # what differs between the recorded context and now

The generator is called as the captured function was: the recorded input
(the snapshot, when it hashes to the recorded input hash; else pass
``input=``) positionally and the recorded params as keywords. The CLI finds
generators with ``--generator MODULE:ATTR`` (a :class:`Generators` or a plain
function) or the ``provmark.generators`` entry point group.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..capture.environment import package_versions, probe
from ..capture.hashing import Encoders, digest_output
from ..capture.model import HashCache, Model
from ..errors import CaptureError, ConfigError, NotFoundError
from ..record import Record

if TYPE_CHECKING:
    from ..client import Provmark

F = TypeVar("F", bound=Callable[..., Any])
_MISSING: Any = object()
ENTRY_POINTS = "provmark.generators"


@dataclass(frozen=True)
class Generator:
    fn: Callable[..., Any]
    model: Model | None = None


class Generators:
    """Generators by model name."""

    def __init__(self) -> None:
        self._by_name: dict[str, Generator] = {}

    def register(self, model: Model | str, fn: F | None = None) -> Any:
        """``register(model, fn)`` or ``@register(model)``; a :class:`Model` with weights
        lets replay compare the model's identity now with the recorded one."""
        spec = model if isinstance(model, Model) else None
        name = model.name if isinstance(model, Model) else model

        def add(f: F) -> F:
            if not callable(f):
                raise ConfigError(f"generator for {name!r} is not callable")
            self._by_name[name] = Generator(f, spec)
            return f

        return add(fn) if fn is not None else add

    def get(self, name: str) -> Generator:
        found = self._by_name.get(name)
        if found is None:
            known = ", ".join(sorted(self._by_name)) or "none"
            raise NotFoundError(
                f"no generator registered for model {name!r} (registered: {known})",
                field="generator",
                hint="register one with Generators.register or give a generator MODULE:ATTR",
            )
        return found

    def names(self) -> list[str]:
        return sorted(self._by_name)


@dataclass(frozen=True)
class Difference:
    """One part of the recorded context that is not what it is now."""

    field: str
    recorded: Any
    now: Any

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "recorded": self.recorded, "now": self.now}


@dataclass
class ReplayResult:
    record_id: str
    model: str
    recorded_sha256: list[str]
    replayed_sha256: list[str]
    input_from: str  # "snapshot", "given" or "none"
    differences: list[Difference] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    output: Any = None

    @property
    def match(self) -> bool:
        return self.recorded_sha256 == self.replayed_sha256

    @property
    def status(self) -> str:
        return "match" if self.match else "mismatch"

    def to_json(self) -> dict[str, Any]:
        return {
            "record_id": self.record_id,
            "model": self.model,
            "status": self.status,
            "recorded_sha256": self.recorded_sha256,
            "replayed_sha256": self.replayed_sha256,
            "input_from": self.input_from,
            "differences": [d.to_json() for d in self.differences],
            "notes": self.notes,
        }


def replay(
    pm: Provmark,
    record_id: str,
    generators: Generators,
    *,
    input: Any = _MISSING,
) -> ReplayResult:
    """Re-run the generation of a stored record (id or slug) and compare."""
    return replay_record(pm.get(record_id), generators, input=input, encoders=pm.encoders)


def replay_record(
    record: Record,
    generators: Generators,
    *,
    input: Any = _MISSING,
    encoders: Encoders | None = None,
) -> ReplayResult:
    outputs = record.all_outputs()
    if record.status != "ok" or not outputs:
        raise ConfigError(
            f"record {record.slug} has no output to compare (status {record.status}); "
            "only successful generations can be replayed"
        )
    gen = generators.get(record.model.name)
    differences = model_differences(record, gen.model)
    value, source = _input(record, input, encoders)
    output = _call(gen.fn, value, source, record)
    produced = output if len(outputs) > 1 and isinstance(output, list | tuple) else [output]
    result = ReplayResult(
        record_id=record.record_id,
        model=record.model.name,
        recorded_sha256=[o.sha256 for o in outputs],
        replayed_sha256=[digest_output(o, encoders).sha256 for o in produced],
        input_from=source,
        output=output,
    )
    result.differences = differences + context_differences(record)
    if gen.model is None:
        result.notes.append("model identity not compared: the generator has no provmark.Model")
    return result


def model_differences(record: Record, model: Model | None) -> list[Difference]:
    if model is None:
        return []
    try:
        now = model.identity(HashCache())
    except CaptureError as exc:
        raise NotFoundError(f"model {record.model.name!r} is gone: {exc}; cannot replay") from None
    recorded = record.model
    diffs = [
        Difference(f"model.{key}", getattr(recorded, key), now.get(key))
        for key in ("name", "version", "revision", "digest")
        if getattr(recorded, key) != now.get(key)
    ]
    then_files = {f.path: f.sha256 for f in recorded.files}
    now_files = {f["path"]: f["sha256"] for f in now.get("files", [])}
    for path in sorted(then_files.keys() | now_files.keys()):
        if then_files.get(path) != now_files.get(path):
            diffs.append(
                Difference(f"model.files[{path}].sha256", then_files.get(path), now_files.get(path))
            )
    return diffs


def context_differences(record: Record, now: dict[str, Any] | None = None) -> list[Difference]:
    """Python, platform, package versions, GPUs, container and git commit: then vs now."""
    then = record.context
    current = now if now is not None else probe(then.packages.keys() or ())
    diffs: list[Difference] = []
    for key in ("python", "platform"):
        if getattr(then, key) is not None and getattr(then, key) != current.get(key):
            diffs.append(Difference(f"context.{key}", getattr(then, key), current.get(key)))
    installed = current.get("packages") or package_versions(then.packages)
    for name, version in sorted(then.packages.items()):
        if installed.get(name) != version:
            diffs.append(Difference(f"context.packages.{name}", version, installed.get(name)))
    gpus_then = [g.model_dump(exclude_none=True) for g in then.gpu]
    if gpus_then != (current.get("gpu") or []):
        diffs.append(Difference("context.gpu", gpus_then, current.get("gpu") or []))
    for part, keys in (("container", ("image", "digest")), ("git", ("commit",))):
        recorded = getattr(then, part)
        for key in keys:
            value = getattr(recorded, key, None) if recorded is not None else None
            if value is not None and value != (current.get(part) or {}).get(key):
                diffs.append(
                    Difference(f"context.{part}.{key}", value, (current.get(part) or {}).get(key))
                )
    return diffs


def _input(record: Record, given: Any, encoders: Encoders | None) -> tuple[Any, str]:
    want = record.input.sha256
    if given is not _MISSING:
        if want is not None and digest_output(given, encoders).sha256 != want:
            raise ConfigError("input: its sha256 differs from the recorded input's")
        return given, "given"
    if want is None:
        if record.input.snapshot is None:
            return None, "none"
        return record.input.snapshot, "snapshot"
    snapshot = record.input.snapshot
    if snapshot is None:
        raise ConfigError(
            f"input: record {record.slug} kept no input snapshot; pass the original input"
        )
    candidates: list[Any] = [snapshot]
    with contextlib.suppress(ValueError):
        candidates.append(json.loads(snapshot))
    for value in candidates:
        if digest_output(value, encoders).sha256 == want:
            return value, "snapshot"
    raise ConfigError(
        f"input: the snapshot of record {record.slug} does not hash to its recorded input "
        "(it was redacted or truncated); pass the original input"
    )


def _call(fn: Callable[..., Any], value: Any, source: str, record: Record) -> Any:
    params = dict(record.params)
    try:
        sig: inspect.Signature | None = inspect.signature(fn)
    except (TypeError, ValueError):
        sig = None
    if (
        sig is not None
        and "seed" in sig.parameters
        and "seed" not in params
        and record.input.seed is not None
    ):
        params["seed"] = _seed(record.input.seed)
    positional = (
        [
            p
            for p in sig.parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        if sig
        else []
    )
    if source == "none":
        result = fn(**params)
    elif (
        isinstance(value, dict)
        and len(positional) > 1
        and value.keys() <= {p.name for p in positional}
    ):
        result = fn(**value, **params)
    else:
        result = fn(value, **params)
    if inspect.iscoroutine(result):
        result = asyncio.run(result)
    if inspect.isasyncgen(result):
        result = asyncio.run(_drain(result))
    elif inspect.isgenerator(result):
        result = _join(list(result))
    return result


async def _drain(agen: Any) -> Any:
    return _join([chunk async for chunk in agen])


def _join(chunks: list[Any]) -> Any:
    if chunks and all(isinstance(c, str) for c in chunks):
        return "".join(chunks)
    if all(isinstance(c, bytes | bytearray) for c in chunks):
        return b"".join(bytes(c) for c in chunks)
    return chunks


def _seed(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        return text


def load_generators(specs: Iterable[str], record: Record | None = None) -> Generators:
    """``MODULE:ATTR`` or ``path/file.py:ATTR`` (a Generators, or a function registered for
    the record's model), plus every ``provmark.generators`` entry point."""
    found = Generators()
    for ep in importlib.metadata.entry_points(group=ENTRY_POINTS):
        _merge(found, ep.load(), ep.name, f"entry point {ep.name}")
    for spec in specs:
        module_name, sep, attr = spec.rpartition(":")
        if not sep or not module_name or not attr:
            raise ConfigError(f"{spec!r}: use MODULE:ATTR or path/file.py:ATTR", field="generator")
        obj = getattr(_import(module_name, spec), attr, None)
        if obj is None:
            raise ConfigError(f"{spec!r}: {module_name} has no {attr!r}", field="generator")
        _merge(found, obj, record.model.name if record else None, f"--generator {spec}")
    return found


def _merge(into: Generators, obj: Any, name: str | None, where: str) -> None:
    if isinstance(obj, Generators):
        for n in obj.names():
            g = obj.get(n)
            into.register(g.model or n, g.fn)
    elif callable(obj) and name is not None:
        into.register(name, obj)
    else:
        raise ConfigError(f"{where}: not a provmark.verification.replay.Generators or a function")


def _import(module_name: str, spec: str) -> Any:
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            loader_spec = importlib.util.spec_from_file_location(path.stem, path)
            if loader_spec is None or loader_spec.loader is None or not path.is_file():
                raise ConfigError(f"{spec!r}: no such file {path}", field="generator")
            module = importlib.util.module_from_spec(loader_spec)
            loader_spec.loader.exec_module(module)
            return module
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"{spec!r}: cannot import {module_name} ({exc})", field="generator"
        ) from None
