"""What every integration shares: lazy imports with version checks, the capture failure
policy, hooks around ``emit`` and small helpers for request parameters.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import json
import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, Self

from ..canonical import canonical_bytes
from ..capture.core import Outcome, Recording
from ..capture.model import Model
from ..errors import CanonicalizationError, CaptureError, ConfigError
from ..record import slug_for

log = logging.getLogger("provmark.integrations")

_VERSION = re.compile(r"\d+(?:\.\d+)*")


class CaptureTarget(Protocol):
    """What integrations need of ``provmark.open(...)`` (embedded or remote)."""

    policy: str
    capture_failures: int

    def record(
        self, *, input: Any = None, params: Mapping[str, Any] | None = None, **spec: Any
    ) -> Recording: ...

    def emit(self, outcome: Outcome) -> str: ...

    def acting_for(self, user_id: str) -> AbstractContextManager[None]: ...


def version_tuple(text: str) -> tuple[int, ...]:
    """``"2.13.0+cpu"`` -> ``(2, 13, 0)``; pre-release tags are ignored."""
    match = _VERSION.match(text.strip().lstrip("v"))
    if not match:
        raise ValueError(f"not a version: {text!r}")
    return tuple(int(p) for p in match.group(0).split("."))


def require(
    module: str,
    *,
    extra: str,
    package: str,
    minimum: str,
    below: str,
    distributions: Sequence[str] = (),
) -> ModuleType:
    """Import ``module`` or raise a :class:`ConfigError` telling what to install.

    The installed version (the module's ``__version__``, else the version of the
    first installed distribution of ``distributions``/``package``) must be at least
    ``minimum`` and below ``below``.
    """
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(
            f"provmark.integrations.{extra} needs the {package!r} package, which is not "
            f"installed: pip install 'provmark[{extra}]' ({exc})"
        ) from None
    found = getattr(mod, "__version__", None)
    if not isinstance(found, str):
        found = None
        for dist in (*distributions, package):
            try:
                found = importlib.metadata.version(dist)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    if found is None:
        return mod  # a vendored or source install: nothing to compare
    check_version(package, found, minimum=minimum, below=below, extra=extra)
    return mod


def check_version(package: str, found: str, *, minimum: str, below: str, extra: str) -> None:
    try:
        have = version_tuple(found)
    except ValueError:
        return
    if not version_tuple(minimum) <= have < version_tuple(below):
        raise ConfigError(
            f"provmark.integrations.{extra} supports {package}>={minimum},<{below}; "
            f"{package} {found} is installed: pip install '{package}>={minimum},<{below}'"
        )


def policy_failure(pm: CaptureTarget, what: str, exc: BaseException | None = None) -> None:
    """An integration could not record something: strict raises, best_effort counts and logs."""
    pm.capture_failures += 1
    detail = f"{what}: {type(exc).__name__}: {exc}" if exc is not None else what
    if pm.policy == "strict":
        if isinstance(exc, CaptureError):
            raise exc
        raise CaptureError(f"provenance not captured: {detail}") from exc
    log.error("provmark: provenance not captured (best_effort): %s", detail)


class Hook:
    """Called around every record a :class:`~provmark.Provmark` emits (see :func:`add_hook`).

    ``before`` may add tags/extra to the outcome (they are signed with the record);
    ``after`` gets the new record id. An exception in either follows the capture
    failure policy.
    """

    def before(self, outcome: Outcome) -> None:
        return None

    def after(self, outcome: Outcome, record_id: str) -> None:
        return None


class EmitHooks:
    """Stands in for ``pm.emit`` while hooks are installed; ``Recording`` and ``capture``
    call ``pm.emit``, so every record of that instance passes through here."""

    def __init__(self, pm: CaptureTarget, inner: Callable[[Outcome], str]) -> None:
        self.pm = pm
        self.inner = inner
        self.hooks: tuple[Hook, ...] = ()
        self.lock = threading.Lock()

    def __call__(self, outcome: Outcome) -> str:
        for hook in self.hooks:
            try:
                hook.before(outcome)
            except Exception as exc:
                policy_failure(self.pm, f"{type(hook).__name__}.before", exc)
        record_id = self.inner(outcome)
        if record_id:
            for hook in self.hooks:
                try:
                    hook.after(outcome, record_id)
                except Exception as exc:
                    policy_failure(self.pm, f"{type(hook).__name__}.after", exc)
        return record_id


def add_hook(pm: CaptureTarget, hook: Hook) -> None:
    current = vars(pm).get("emit")
    if not isinstance(current, EmitHooks):
        current = EmitHooks(pm, pm.emit)
        pm.emit = current  # type: ignore[method-assign]
    with current.lock:
        current.hooks = (*current.hooks, hook)


def remove_hook(pm: CaptureTarget, hook: Hook) -> None:
    current = vars(pm).get("emit")
    if not isinstance(current, EmitHooks):
        return
    with current.lock:
        current.hooks = tuple(h for h in current.hooks if h is not hook)
        if not current.hooks:
            del vars(pm)["emit"]  # the class's own emit again


class FolderModel(Model):
    """A model identified by every file of its folder, whatever the format: MLflow models
    (``MLmodel``, pickles, ``conda.yaml``...), diffusers pipelines (``model_index.json``,
    scheduler and component configs...). Python byte-code caches (``__pycache__``) are
    left out: they change with the interpreter, not with the model."""

    def files(self) -> list[Path]:
        paths = Model(self.name, weights=self.weights).files()  # files given as weights=
        if self.directory is not None:
            root = Path(self.directory)
            if not root.is_dir():
                raise CaptureError(f"model directory {root} does not exist")
            paths.extend(
                p
                for p in sorted(root.rglob("*"))
                if p.is_file() and "__pycache__" not in p.relative_to(root).parts
            )
        return paths


def same_model(requested: str | None, served: str | None) -> bool:
    """Whether ``served`` is ``requested`` or a pinned snapshot of it (``gpt-4o`` ->
    ``gpt-4o-2024-08-06``, ``gemini-1.5-pro`` -> ``gemini-1.5-pro-002``, ``llama3`` ->
    ``llama3:latest``), as opposed to another model (``gpt-4o`` -> ``gpt-4o-mini``)."""
    if not requested or not served:
        return True
    r = requested.lower().rsplit("/", 1)[-1]
    s = served.lower().rsplit("/", 1)[-1]
    return s == r or (s.startswith(r) and bool(_SNAPSHOT_SUFFIX.match(s[len(r) :])))


def answered_by(rec: Recording, model: Any) -> None:
    """Make ``model`` (a :class:`provmark.Model`) the record's ``model``: the model that
    answered after a fallback; ``fallback.requested_model`` keeps the one asked for, so
    ``log --model``, ``verify`` and the web UI name the model that made the output."""
    rec.outcome.spec = replace(rec.outcome.spec, model=model)


_SNAPSHOT_SUFFIX = re.compile(r"^(?:-\d[\d.-]*|-latest|[@:].+)$")


_HASHED_PARAMS = frozenset(
    {"tools", "functions", "response_format", "logit_bias", "prediction", "json_schema"}
)


def clean_params(
    values: Mapping[str, Any], skip: frozenset[str], hashed: frozenset[str] = _HASHED_PARAMS
) -> dict[str, Any]:
    """Request parameters fit for a record: JSON values only; bulky ones as a SHA-256."""
    params: dict[str, Any] = {}
    for key, value in values.items():
        if key in skip or value is None or _is_sentinel(value):
            continue
        value = plain(value)
        if key in hashed:
            try:
                params[f"{key}_sha256"] = hashlib.sha256(canonical_bytes(value)).hexdigest()
            except CanonicalizationError:
                continue
            continue
        try:
            canonical_bytes(value)
        except CanonicalizationError:
            continue  # not JSON (a callable, a tensor...): not a parameter worth signing
        params[key] = value
    return params


def plain(value: Any) -> Any:
    """Pydantic models and dataclass-like objects as plain JSON-shaped values."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return dump(mode="json", exclude_none=True)
        except TypeError:
            return dump()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _is_sentinel(value: Any) -> bool:
    # openai's NOT_GIVEN / omit and similar "no value" markers
    return type(value).__name__ in ("NotGiven", "Omit", "_NotGiven", "Unset", "UnsetType")


def text_or_json(values: list[Any]) -> Any:
    """One text -> the text (so ``pm.verify(text)`` works); several -> the JSON list."""
    if len(values) == 1 and isinstance(values[0], str):
        return values[0]
    return values


def record_rows(pm: Any, record_ids: Sequence[str]) -> list[dict[str, Any]]:
    """One summary row per record (what run tables and ``records.jsonl`` hold)."""
    rows = []
    for record_id in record_ids:
        r = pm.get(record_id)
        rows.append(
            {
                "record_id": r.record_id,
                "slug": r.slug,
                "generated_at": r.generated_at,
                "operation": r.operation,
                "status": r.status,
                "model": r.model.name,
                "model_digest": r.model.digest,
                "output_sha256": r.output.sha256 if r.output else None,
                "log_index": r.log.index if r.log else None,
            }
        )
    return rows


def write_run_files(
    pm: Any, record_ids: Sequence[str], new_ids: Sequence[str], folder: Path, bundles: bool
) -> list[dict[str, Any]]:
    """``records.jsonl`` (every id of the run) and ``bundles/<slug>.provmark.json`` (new ids)
    in ``folder``; returns the rows."""
    rows = record_rows(pm, record_ids)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "records.jsonl", "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
    if bundles:
        (folder / "bundles").mkdir(exist_ok=True)
        for record_id in new_ids:
            bundle = pm.bundle(record_id)
            slug = slug_for(record_id)
            text = json.dumps(bundle, indent=2, ensure_ascii=False) + "\n"
            (folder / "bundles" / f"{slug}.provmark.json").write_text(text, encoding="utf-8")
    return rows


class RunRecords(Hook):
    """Tags each record with the run active when it is captured and remembers its id,
    so a tracker integration can log the run's records (see mlflow/wandb ``autolog``)."""

    tag_prefix = ""

    def __init__(self, pm: CaptureTarget) -> None:
        self.pm = pm
        self.lock = threading.Lock()
        self.ids: dict[str, list[str]] = {}
        self.logged: dict[str, int] = {}

    def active_run(self) -> dict[str, str] | None:
        """Tags naming the active run (the first value is its id), or None."""
        raise NotImplementedError

    def before(self, outcome: Outcome) -> None:
        tags = self.active_run()
        if tags:
            outcome.tags.update(tags)

    def after(self, outcome: Outcome, record_id: str) -> None:
        run_id = outcome.tags.get(self.tag_prefix + "run_id")
        if run_id:
            with self.lock:
                self.ids.setdefault(run_id, []).append(record_id)

    def pending(self) -> list[tuple[str, list[str], list[str]]]:
        """(run id, all its record ids, those not logged yet) for runs with new records."""
        with self.lock:
            out = []
            for run_id, ids in self.ids.items():
                done = self.logged.get(run_id, 0)
                if len(ids) > done:
                    out.append((run_id, list(ids), ids[done:]))
            return out

    def mark_logged(self, run_id: str, count: int) -> None:
        with self.lock:
            self.logged[run_id] = max(self.logged.get(run_id, 0), count)

    def flush(self) -> None:
        """Log the records of every run that has new ones."""
        raise NotImplementedError

    def close(self) -> None:
        remove_hook(self.pm, self)
        self.flush()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
