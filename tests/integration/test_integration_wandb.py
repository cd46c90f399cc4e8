"""Weights & Biases in offline mode (WANDB_MODE=offline): nothing leaves the machine; the
run's files and its transaction log (run-<id>.wandb) are read back from disk."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import provmark
from provmark import CaptureError, ConfigError

wandb = pytest.importorskip("wandb", reason="wandb is not installable here")
from provmark.integrations import wandb as pm_wandb  # noqa: E402

pytestmark = pytest.mark.slow  # sets up a real tracker/repo/model: seconds


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for key, value in {
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "WANDB_DIR": str(tmp_path),
        "WANDB_DATA_DIR": str(tmp_path / "data"),
        "WANDB_CACHE_DIR": str(tmp_path / "cache"),
        "WANDB_CONFIG_DIR": str(tmp_path / "config"),
        "WANDB_DISABLE_GIT": "true",
    }.items():
        monkeypatch.setenv(key, value)
    yield tmp_path


def run_files(run: Any, until: bytes) -> tuple[Path, bytes]:
    """The run folder and its transaction log, once W&B's writer process has written
    ``until`` into it (it writes after ``finish()`` returns; bounded wait)."""
    run_dir = Path(run.dir).parent
    run_id = run.id
    deadline = time.monotonic() + 30
    log = b""
    while time.monotonic() < deadline:
        log = (run_dir / f"run-{run_id}.wandb").read_bytes()
        if until in log:
            break
        time.sleep(0.1)
    return run_dir, log


def test_autolog_logs_a_table_and_an_artifact(offline: Path, pm: Any) -> None:
    caption = pm.capture(model=provmark.Model("acme/captioner", version="2"))(
        lambda image_id, *, beam=1: f"caption of {image_id}"
    )
    with (
        wandb.init(project="captions", config={"beam": 3}, dir=offline) as run,
        pm_wandb.autolog(pm),
    ):
        outs = [caption(f"img-{i}", beam=3) for i in range(3)]
    caption("after the run")

    records = [pm.verify(o).record for o in outs]
    for r in records:
        assert r.tags["wandb.run_id"] == run.id and r.tags["wandb.project"] == "captions"
    assert "wandb.run_id" not in pm.verify("caption of after the run").record.tags

    run_dir, log = run_files(run, b"provmark/last_record_id")
    (table_file,) = (run_dir / "files" / "media" / "table" / "provmark").glob("records_*.json")
    table = json.loads(table_file.read_text())
    ids = [row[table["columns"].index("record_id")] for row in table["data"]]
    assert ids == [r.record_id for r in records]
    assert records[-1].record_id.encode() in log  # summary: provmark/last_record_id
    for r in records:  # the artifact manifest lists one bundle per record
        assert f"bundles/{r.slug}.provmark.json".encode() in log
    assert f"provmark-records-{run.id}".encode() in log and b"provmark/last_record_id" in log


def test_log_records_needs_a_live_run_and_follows_the_policy(
    offline: Path, db_path: Path, home: Path
) -> None:
    with provmark.open(db_path, home=home) as pm:
        with pm.record(model="m", input="a") as rec:
            rec.set_output("explicit")
        with pytest.raises(ConfigError, match="no active W&B run"):
            pm_wandb.log_records(pm, [rec.record_id])
        run = wandb.init(project="p", dir=offline)
        pm_wandb.log_records(pm, [rec.record_id], bundles=False)
        run.finish()
        _, log = run_files(run, rec.record_id.encode())
        assert rec.record_id.encode() in log
        with pytest.raises(CaptureError, match=f"W&B run {run.id}"):
            pm_wandb.log_records(pm, [rec.record_id], run=run)  # the run has finished
    with provmark.open(db_path, home=home, policy="best_effort") as pm:
        pm_wandb.log_records(pm, [rec.record_id], run=run)
        assert pm.capture_failures == 1


def test_missing_wandb_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['wandb'] = None\n"
        "from provmark.integrations import wandb as w\n"
        "try:\n    w.autolog(None)\n"
        "except Exception as e:\n    print(type(e).__name__, e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("ConfigError") and "pip install 'provmark[wandb]'" in out.stdout
