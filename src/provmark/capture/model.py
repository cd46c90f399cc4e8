"""Model identity: name, version, provider and the hashes of its weight files.

Weight files are hashed streamingly once per (path, size, mtime) by a
:class:`HashCache` owned by the :class:`~provmark.Provmark` instance, so a 5 GB
checkpoint costs one read per process, not one per generation.
``digest`` is ``sha256:`` + SHA-256 over the RFC 8785 JSON of the file list
(``[{"path", "sha256", "size"}, ...]`` sorted by path), so it identifies the
whole set of weights.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..canonical import Fragment, canonical_bytes
from ..errors import CaptureError
from .hashing import hash_file

WEIGHT_SUFFIXES = (
    ".safetensors",
    ".bin",
    ".pt",
    ".pth",
    ".ckpt",
    ".gguf",
    ".onnx",
    ".h5",
    ".msgpack",
)
RECHECK_SECONDS = 10.0
IDENTITY_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
)


class HashCache:
    """SHA-256 of files keyed by (path, size, mtime_ns)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, int, int], str] = {}

    def sha256(self, path: Path) -> tuple[str, int]:
        try:
            st = path.stat()
        except OSError as exc:
            raise CaptureError(f"model file {path}: {exc.strerror or exc}") from None
        key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
        with self._lock:
            cached = self._cache.get(key)
        if cached is None:
            cached, _ = hash_file(path)
            with self._lock:
                self._cache[key] = cached
        return cached, st.st_size


@dataclass(frozen=True)
class Model:
    """Which model made an output.

    ``weights`` is one file or a list of files; ``directory`` hashes the weight
    and identity files found in a model folder (a Hugging Face snapshot, say).
    """

    name: str
    version: str | None = None
    provider: str | None = None
    revision: str | None = None
    weights: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None
    directory: str | os.PathLike[str] | None = None
    digest: str | None = None
    _resolved: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise CaptureError("Model.name must be a non-empty string")

    def files(self) -> list[Path]:
        paths: list[Path] = []
        if self.weights is not None:
            if isinstance(self.weights, str | os.PathLike):
                paths.append(Path(self.weights))
            else:
                paths.extend(Path(p) for p in self.weights)
        if self.directory is not None:
            root = Path(self.directory)
            if not root.is_dir():
                raise CaptureError(f"model directory {root} does not exist")
            for p in sorted(root.rglob("*")):
                if p.is_file() and (p.suffix in WEIGHT_SUFFIXES or p.name in IDENTITY_FILES):
                    paths.append(p)
        return paths

    def fragment(self, cache: HashCache) -> Fragment:
        """:meth:`identity` with its canonical bytes encoded once (for the hot path)."""
        identity = self.identity(cache)
        cached = self._resolved.get("fragment")
        if cached is None or cached.value is not identity:
            cached = Fragment(identity)
            self._resolved["fragment"] = cached
        return cached

    def identity(self, cache: HashCache) -> dict[str, Any]:
        """The ``model`` part of a record, hashing files on first use."""
        resolved = self._resolved.get("identity")
        if resolved is not None:
            # files are re-checked (stat only) at most every RECHECK_SECONDS
            if time.monotonic() - self._resolved["checked"] < RECHECK_SECONDS:
                return resolved  # type: ignore[no-any-return]
            if all(_unchanged(stamp) for stamp in self._resolved["stamps"]):
                self._resolved["checked"] = time.monotonic()
                return resolved  # type: ignore[no-any-return]
        base = Path(self.directory) if self.directory is not None else None
        entries: list[dict[str, Any]] = []
        stamps = []
        for path in self.files():
            sha, size = cache.sha256(path)
            shown = str(path.relative_to(base)) if base and path.is_relative_to(base) else path.name
            entries.append({"path": shown, "sha256": sha, "size": size})
            st = path.stat()
            stamps.append((str(path), st.st_size, st.st_mtime_ns))
        entries.sort(key=lambda e: str(e["path"]))
        files = entries
        out: dict[str, Any] = {"name": self.name}
        for key in ("version", "provider", "revision"):
            value = getattr(self, key)
            if value is not None:
                out[key] = str(value)
        if files:
            out["files"] = files
            out["digest"] = "sha256:" + hashlib.sha256(canonical_bytes(files)).hexdigest()
        if self.digest is not None:
            out["digest"] = self.digest
        self._resolved.update(identity=out, stamps=stamps, checked=time.monotonic())
        return out


def _unchanged(stamp: tuple[str, int, int]) -> bool:
    path, size, mtime = stamp
    try:
        st = os.stat(path)
    except OSError:
        return False
    return st.st_size == size and st.st_mtime_ns == mtime


def as_model(value: Model | str | dict[str, Any]) -> Model:
    if isinstance(value, Model):
        return value
    if isinstance(value, str):
        return Model(value)
    if isinstance(value, dict):
        return Model(**value)
    raise CaptureError(
        f"model must be a provmark.Model, a name or a dict, not {type(value).__name__}"
    )
