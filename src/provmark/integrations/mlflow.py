"""MLflow: records linked to runs, run artifacts with record ids and bundles, and model
identity from the model registry.

    with provmark.integrations.mlflow.autolog(pm):
        with mlflow.start_run():
            summarize(article)            # record tagged mlflow.run_id / mlflow.experiment_id
    # the run now has provmark/records.jsonl and provmark/bundles/<slug>.provmark.json

    model = provmark.integrations.mlflow.model_from_registry("models:/summarizer/3")
    @pm.capture(model=model)              # name, version, run id and weight hashes

While ``autolog`` is active, every record ``pm`` captures inside an active MLflow run is
tagged with the run and, when the autolog ends (or on ``flush()``, or when another run
becomes active), the run gets the artifacts and the tags ``provmark.records``,
``provmark.last_record_id`` and ``provmark.origin``. ``log_records`` does the same for
record ids you choose.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..capture.model import Model
from ..errors import ConfigError
from .common import (
    CaptureTarget,
    FolderModel,
    RunRecords,
    add_hook,
    policy_failure,
    require,
    write_run_files,
)

MINIMUM, BELOW = "2.10", "4"
ARTIFACT_PATH = "provmark"
_MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[\w-]+))$")


def _mlflow() -> Any:
    return require(
        "mlflow",
        extra="mlflow",
        package="mlflow",
        minimum=MINIMUM,
        below=BELOW,
        distributions=("mlflow", "mlflow-skinny"),
    )


def model_from_registry(uri: str, *, download_to: str | Path | None = None) -> Model:
    """A :class:`provmark.Model` for ``models:/<name>/<version>`` or ``models:/<name>@<alias>``.

    name and version come from the registry, ``revision`` is the MLflow run that made
    the model version, and every file of the version (downloaded to ``download_to`` or a
    temporary folder when the store is remote) is hashed, whatever its format (weights,
    pickles, ``MLmodel``, environment files), so two different models never look the same.
    """
    mlflow = _mlflow()
    match = _MODEL_URI.match(uri)
    if not match:
        raise ConfigError(
            f"model_from_registry: {uri!r} is not models:/<name>/<version> "
            "or models:/<name>@<alias>"
        )
    client = mlflow.MlflowClient()
    name = match["name"]
    try:
        if match["alias"]:
            mv = client.get_model_version_by_alias(name, match["alias"])
        else:
            mv = client.get_model_version(name, match["version"])
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}/{mv.version}",
            dst_path=str(download_to) if download_to else None,
        )
    except mlflow.exceptions.MlflowException as exc:
        raise ConfigError(f"model_from_registry: {uri}: {exc.message}") from None
    folder = Path(local)
    files: dict[str, Any] = {"directory": folder} if folder.is_dir() else {"weights": folder}
    return FolderModel(
        name, version=str(mv.version), provider="mlflow", revision=mv.run_id, **files
    )


def log_records(
    pm: CaptureTarget,
    record_ids: Sequence[str],
    *,
    run_id: str | None = None,
    bundles: bool = True,
    new_ids: Sequence[str] | None = None,
) -> None:
    """Log ``record_ids`` to an MLflow run (the active one by default): the artifact
    ``provmark/records.jsonl``, one offline bundle per record and the run tags.

    A failure follows the capture policy (strict raises :class:`~provmark.CaptureError`).
    """
    mlflow = _mlflow()
    if run_id is None:
        run = mlflow.active_run()
        if run is None:
            raise ConfigError("log_records: no active MLflow run; pass run_id=")
        run_id = run.info.run_id
    try:
        flush = getattr(pm, "flush", None)
        if callable(flush):
            flush()
        client = mlflow.MlflowClient()
        with tempfile.TemporaryDirectory(prefix="provmark-mlflow-") as tmp:
            folder = Path(tmp) / ARTIFACT_PATH
            fresh = list(record_ids if new_ids is None else new_ids)
            write_run_files(pm, record_ids, fresh, folder, bundles)
            client.log_artifacts(run_id, str(folder), ARTIFACT_PATH)
        tags = {"provmark.records": str(len(record_ids))}
        if record_ids:
            tags["provmark.last_record_id"] = record_ids[-1]
        origin = getattr(getattr(pm, "store", None), "origin", None)
        if origin:
            tags["provmark.origin"] = str(origin)
        for key, value in tags.items():
            client.set_tag(run_id, key, value)
    except Exception as exc:
        policy_failure(pm, f"logging {len(record_ids)} records to MLflow run {run_id}", exc)


class Autolog(RunRecords):
    """Links every record captured inside an MLflow run to it (see :func:`autolog`)."""

    tag_prefix = "mlflow."

    def __init__(self, pm: CaptureTarget, mlflow: Any, bundles: bool) -> None:
        super().__init__(pm)
        self.mlflow = mlflow
        self.bundles = bundles
        self._last_run: str | None = None

    def active_run(self) -> dict[str, str] | None:
        run = self.mlflow.active_run()
        if run is None:
            return None
        run_id = run.info.run_id
        if self._last_run is not None and run_id != self._last_run:
            self.flush()  # a new run: the previous one is complete
        self._last_run = run_id
        return {"mlflow.run_id": run_id, "mlflow.experiment_id": str(run.info.experiment_id)}

    def flush(self) -> None:
        """Log the records of every run that has new ones."""
        for run_id, ids, fresh in self.pending():
            log_records(self.pm, ids, run_id=run_id, bundles=self.bundles, new_ids=fresh)
            self.mark_logged(run_id, len(ids))


def autolog(pm: CaptureTarget, *, bundles: bool = True) -> Autolog:
    """Start linking ``pm``'s records to the active MLflow run; stop with ``close()`` or
    use it as a context manager. ``bundles=False`` logs only ``records.jsonl``."""
    hook = Autolog(pm, _mlflow(), bundles)
    add_hook(pm, hook)
    return hook
