"""Weights & Biases: records linked to the run, logged as a run table and an artifact.

    with wandb.init(project="summaries") as run, provmark.integrations.wandb.autolog(pm):
        summarize(article)        # record tagged wandb.run_id / wandb.project
    # the run now has the table "provmark/records" and the artifact
    # "provmark-records-<run id>" (records.jsonl + one offline bundle per record)

Close the autolog before the run finishes (the ``with`` line above does: context
managers exit in reverse order), or call ``flush()``; logging to a finished run fails
and, like every integration failure, follows the capture policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .common import (
    CaptureTarget,
    RunRecords,
    add_hook,
    policy_failure,
    require,
    write_run_files,
)

MINIMUM, BELOW = "0.16", "1"
TABLE_KEY = "provmark/records"
ARTIFACT_TYPE = "provmark-records"


def _wandb() -> Any:
    return require("wandb", extra="wandb", package="wandb", minimum=MINIMUM, below=BELOW)


def log_records(
    pm: CaptureTarget,
    record_ids: Sequence[str],
    *,
    run: Any = None,
    bundles: bool = True,
    new_ids: Sequence[str] | None = None,
) -> None:
    """Log ``record_ids`` to a W&B run (the current one by default): a table under
    ``provmark/records``, an artifact ``provmark-records-<run id>`` with ``records.jsonl``
    and the bundles, and ``provmark/*`` summary values.

    A failure follows the capture policy (strict raises :class:`~provmark.CaptureError`).
    """
    wandb = _wandb()
    run = run if run is not None else wandb.run
    if run is None:
        raise ConfigError("log_records: no active W&B run; call wandb.init() or pass run=")
    try:
        flush = getattr(pm, "flush", None)
        if callable(flush):
            flush()
        # in the run's own folder: W&B reads artifact files after log_artifact returns
        folder = Path(run.dir) / "provmark"
        fresh = list(record_ids if new_ids is None else new_ids)
        rows = write_run_files(pm, record_ids, fresh, folder, bundles)
        columns = list(rows[0]) if rows else ["record_id"]
        table = wandb.Table(columns=columns, data=[[row[c] for c in columns] for row in rows])
        run.log({TABLE_KEY: table})
        artifact = wandb.Artifact(f"provmark-records-{run.id}", type=ARTIFACT_TYPE)
        artifact.add_dir(str(folder))
        run.log_artifact(artifact)
        run.summary["provmark/records"] = len(record_ids)
        if record_ids:
            run.summary["provmark/last_record_id"] = record_ids[-1]
        origin = getattr(getattr(pm, "store", None), "origin", None)
        if origin:
            run.summary["provmark/origin"] = str(origin)
    except Exception as exc:
        run_id = getattr(run, "id", "?")
        policy_failure(pm, f"logging {len(record_ids)} records to W&B run {run_id}", exc)


class Autolog(RunRecords):
    """Links every record captured while a W&B run is active to it (see :func:`autolog`)."""

    tag_prefix = "wandb."

    def __init__(self, pm: CaptureTarget, wandb: Any, bundles: bool) -> None:
        super().__init__(pm)
        self.wandb = wandb
        self.bundles = bundles
        self.runs: dict[str, Any] = {}
        self._tags: dict[int, dict[str, str]] = {}

    def active_run(self) -> dict[str, str] | None:
        run = self.wandb.run
        if run is None:
            return None
        tags = self._tags.get(id(run))  # the run is kept in self.runs, so its id stays its own
        if tags is None:
            run_id = str(run.id)
            tags = {"wandb.run_id": run_id}
            if run.project:
                tags["wandb.project"] = str(run.project)
            if run.entity:
                tags["wandb.entity"] = str(run.entity)
            with self.lock:
                self.runs[run_id] = run
                self._tags[id(run)] = tags
        return tags

    def flush(self) -> None:
        """Log the records of every run that has new ones."""
        for run_id, ids, fresh in self.pending():
            run = self.runs.get(run_id)
            log_records(self.pm, ids, run=run, bundles=self.bundles, new_ids=fresh)
            self.mark_logged(run_id, len(ids))


def autolog(pm: CaptureTarget, *, bundles: bool = True) -> Autolog:
    """Start linking ``pm``'s records to the current W&B run; stop with ``close()`` or use
    it as a context manager. ``bundles=False`` leaves the bundles out of the artifact."""
    hook = Autolog(pm, _wandb(), bundles)
    add_hook(pm, hook)
    return hook
