"""DVC: the datasets a generation used, from ``dvc.lock`` and ``.dvc`` files, on its record.

    train_data = provmark.integrations.dvc.Datasets("path/to/repo", stage="train")
    with pm.record(model=m, input=prompt) as rec:
        train_data.attach(rec)            # input.datasets: [{uri, sha256}, ...]
        rec.set_output(generate(prompt))

    with provmark.integrations.dvc.track(pm, train_data):   # every record of pm
        summarize(article)

Which datasets: the outputs of ``.dvc`` files and of ``dvc.lock`` stages (``targets``
picks some by path), or with ``stage=`` the dependencies of that stage: those DVC tracks
as data, and files kept in git whose md5 ``dvc.lock`` holds (code files such as
``train.py`` only with ``code=True``; a dependency without an md5 or outside the
repository is logged as a warning and left out). Each is resolved once, when
``Datasets`` is made:

* ``uri``: the object's URL in the default DVC remote (content-addressed, from
  ``dvc.api.get_url``) when a remote is configured, else ``file://<path>#md5=<md5>``;
* ``sha256``: of the workspace file, after checking that its MD5 is the locked one
  (a file that no longer matches raises :class:`DatasetChanged`: the record would
  otherwise name data that was not used); for a directory, of DVC's ``.dir`` listing
  in the cache, which names every file by hash; for data not checked out, of the
  cache object. Left out when none of these is on this machine.
"""

from __future__ import annotations

import configparser
import hashlib
import importlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..capture.core import Outcome, Recording
from ..errors import ConfigError
from .common import CaptureTarget, Hook, add_hook, log, remove_hook, require

MINIMUM, BELOW = "3.0", "4"
LOCK_SCHEMA = "2.0"
_CHUNK = 1 << 20
# stage dependencies kept in git that are code, not data (Datasets(code=True) keeps them)
CODE_SUFFIXES = frozenset(
    {".py", ".ipynb", ".sh", ".bash", ".r", ".jl", ".js", ".ts", ".rb", ".go", ".java", ".scala"}
)


class DatasetChanged(ConfigError):
    """A DVC-tracked file in the workspace is not the version its lock/.dvc file names."""


def _dvc_api() -> Any:
    require("dvc", extra="dvc", package="dvc", minimum=MINIMUM, below=BELOW)
    return importlib.import_module("dvc.api")


@dataclass(frozen=True)
class DvcDataset:
    path: str  # relative to the repository root, POSIX separators
    md5: str  # DVC's hash; a directory's ends with ".dir"
    size: int | None
    uri: str
    sha256: str | None
    source: str  # the .dvc or dvc.lock file that names it

    def entry(self) -> dict[str, str]:
        """The record's ``input.datasets`` entry."""
        out = {"uri": self.uri}
        if self.sha256:
            out["sha256"] = self.sha256
        return out


def _yaml(path: Path) -> Any:
    from ruamel.yaml import YAML  # a dependency of dvc

    try:
        return YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except Exception as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None


class Datasets:
    """The datasets of a DVC repository, resolved and hashed once."""

    def __init__(
        self,
        root: str | Path = ".",
        *,
        targets: Sequence[str | Path] | None = None,
        stage: str | None = None,
        remote: bool = True,
        code: bool = False,
    ) -> None:
        api = _dvc_api()
        self.root = Path(root).resolve()
        if not (self.root / ".dvc").is_dir():
            raise ConfigError(f"Datasets: {self.root} is not a DVC repository (no .dvc folder)")
        self.config = self._config()
        self.cache = self._cache_dir()
        has_remote = bool(self.config.get("core", "remote", fallback=None))
        tracked = self._tracked()
        if stage is not None:
            chosen = self._stage_deps(stage, tracked, code)
        elif targets is not None:
            chosen = []
            for target in targets:
                rel = self._relative(target)
                if rel not in tracked:
                    raise ConfigError(f"Datasets: {target} is not tracked by DVC in {self.root}")
                chosen.append(tracked[rel])
        else:
            chosen = sorted(tracked.values(), key=lambda t: t["path"])
        self.items = [self._resolve(t, api if remote and has_remote else None) for t in chosen]

    def entries(self) -> list[dict[str, str]]:
        return [d.entry() for d in self.items]

    def attach(self, rec: Recording | Outcome) -> None:
        """Add these datasets to a recording's input."""
        put_datasets(rec.outcome if isinstance(rec, Recording) else rec, self.entries())

    # ------------------------------------------------------------ reading the repo
    def _relative(self, target: str | Path) -> str:
        path = Path(target)
        if not path.is_absolute():
            path = self.root / path
        try:
            return path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            raise ConfigError(f"Datasets: {target} is outside the repository {self.root}") from None

    def _config(self) -> configparser.ConfigParser:
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        for name in ("config", "config.local"):
            try:
                parser.read(self.root / ".dvc" / name, encoding="utf-8")
            except configparser.Error as exc:
                raise ConfigError(f"cannot read .dvc/{name}: {exc}") from None
        return parser

    def _cache_dir(self) -> Path:
        configured = self.config.get("cache", "dir", fallback=None)
        if configured:
            path = Path(configured)
            return path if path.is_absolute() else (self.root / ".dvc" / path).resolve()
        return self.root / ".dvc" / "cache"

    def _tracked(self) -> dict[str, dict[str, Any]]:
        """Every DVC-tracked output by repository-relative path."""
        found: dict[str, dict[str, Any]] = {}
        for file in self._files("*.dvc"):
            data = _yaml(file) or {}
            for out in data.get("outs") or ():
                self._add(found, file, file.parent, out)
        for lock in self._files("dvc.lock"):
            data = _yaml(lock) or {}
            schema = str(data.get("schema", ""))
            if schema != LOCK_SCHEMA:
                raise ConfigError(
                    f"{lock}: dvc.lock schema {schema!r} is not supported (only {LOCK_SCHEMA!r}, "
                    "written by DVC 2 and 3)"
                )
            for name, stage in (data.get("stages") or {}).items():
                for out in stage.get("outs") or ():
                    self._add(found, lock, lock.parent, out, stage=name)
        return found

    def _files(self, pattern: str) -> Iterator[Path]:
        for path in sorted(self.root.rglob(pattern)):
            parts = path.relative_to(self.root).parts
            if parts and parts[0] not in (".dvc", ".git") and path.is_file():
                yield path

    def _add(
        self,
        found: dict[str, dict[str, Any]],
        source: Path,
        base: Path,
        out: dict[str, Any],
        stage: str | None = None,
    ) -> None:
        if "md5" not in out or "path" not in out:
            return  # an output DVC has not hashed yet (not committed)
        rel = (base / str(out["path"])).resolve().relative_to(self.root).as_posix()
        found[rel] = {
            "path": rel,
            "md5": str(out["md5"]),
            "size": out.get("size"),
            "source": source.relative_to(self.root).as_posix(),
            "stage": stage,
        }

    def _stage_deps(
        self, stage: str, tracked: dict[str, dict[str, Any]], code: bool
    ) -> list[dict[str, Any]]:
        for lock in self._files("dvc.lock"):
            stages = (_yaml(lock) or {}).get("stages") or {}
            if stage in stages:
                source = lock.relative_to(self.root).as_posix()
                deps = []
                for dep in stages[stage].get("deps") or ():
                    found = self._dep(stage, lock, source, dep, tracked, code)
                    if found is not None:
                        deps.append(found)
                return deps
        raise ConfigError(f"Datasets: no stage {stage!r} in any dvc.lock of {self.root}")

    def _dep(
        self,
        stage: str,
        lock: Path,
        source: str,
        dep: dict[str, Any],
        tracked: dict[str, dict[str, Any]],
        code: bool,
    ) -> dict[str, Any] | None:
        """One stage dependency: DVC-tracked data, or a file kept in git whose md5
        ``dvc.lock`` holds (code files only with ``code=True``)."""
        raw = str(dep.get("path", ""))
        try:
            rel = (lock.parent / raw).resolve().relative_to(self.root).as_posix()
        except ValueError:
            rel = None
        if rel is not None and rel in tracked:
            return tracked[rel]
        if rel is None or "://" in raw:
            log.warning(
                "provmark: DVC stage %r depends on %s outside the repository: "
                "not recorded as a dataset",
                stage,
                raw,
            )
            return None
        if not code and Path(rel).suffix.lower() in CODE_SUFFIXES:
            return None
        if "md5" not in dep:
            log.warning(
                "provmark: DVC stage %r dependency %s has no md5 in %s (run `dvc repro` or "
                "`dvc commit`): not recorded as a dataset",
                stage,
                rel,
                source,
            )
            return None
        entry = {"path": rel, "md5": str(dep["md5"]), "size": dep.get("size")}
        return {**entry, "source": source, "stage": stage, "in_git": True}

    # ------------------------------------------------------------ hashing
    def _resolve(self, t: dict[str, Any], api: Any) -> DvcDataset:
        md5: str = t["md5"]
        path = self.root / t["path"]
        uri = None
        if api is not None and not t.get("in_git"):
            try:
                uri = api.get_url(t["path"], repo=str(self.root))
            except Exception:  # the remote cannot be resolved: a local URI
                uri = None
        if uri and "://" not in uri:
            uri = Path(uri).resolve().as_uri()
        uri = uri or f"{path.as_uri()}#md5={md5}"
        sha256 = self._sha256(path, md5)
        if sha256 is None:
            log.warning(
                "provmark: DVC dataset %s (md5 %s) is neither in the workspace nor in the "
                "DVC cache: its record entry names it by URI and md5 only",
                t["path"],
                md5,
            )
        return DvcDataset(t["path"], md5, t["size"], uri, sha256, t["source"])

    def _sha256(self, path: Path, md5: str) -> str | None:
        if path.is_file() and not md5.endswith(".dir"):
            got_md5, sha = _hashes(path)  # the data actually used: the workspace file
            if got_md5 != md5:
                raise DatasetChanged(
                    f"{path} changed since DVC recorded it (md5 {got_md5}, locked {md5}): run "
                    "`dvc checkout` for the locked data or `dvc commit`/`dvc repro` to lock this"
                )
            return sha
        cached = self.cache / "files" / "md5" / md5[:2] / md5[2:]
        if cached.is_file():  # a directory's listing, or a file not checked out
            got_md5, sha = _hashes(cached)
            if got_md5 != md5.removesuffix(".dir"):
                raise ConfigError(f"DVC cache object {cached} is corrupt (md5 {got_md5})")
            return sha
        return None  # not pulled and not cached: the URI (with its md5) still names it


def _hashes(path: Path) -> tuple[str, str]:
    md5 = hashlib.md5(usedforsecurity=False)
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            md5.update(chunk)
            sha.update(chunk)
    return md5.hexdigest(), sha.hexdigest()


def put_datasets(outcome: Outcome, entries: list[dict[str, str]]) -> None:
    """Datasets onto an outcome: ``input.datasets`` when the core carries them
    (``Outcome.datasets``), else ``extra.datasets``."""
    target = getattr(outcome, "datasets", None)
    if isinstance(target, list):
        target.extend(e for e in entries if e not in target)
        return
    listed = outcome.extra.setdefault("datasets", [])
    listed.extend(e for e in entries if e not in listed)


class DatasetHook(Hook):
    def __init__(self, datasets: Datasets) -> None:
        self.datasets = datasets

    def before(self, outcome: Outcome) -> None:
        self.datasets.attach(outcome)


@contextmanager
def track(pm: CaptureTarget, datasets: Datasets) -> Iterator[Datasets]:
    """Attach ``datasets`` to every record ``pm`` captures inside the ``with`` block."""
    hook = DatasetHook(datasets)
    add_hook(pm, hook)
    try:
        yield datasets
    finally:
        remove_hook(pm, hook)
