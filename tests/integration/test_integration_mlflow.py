"""MLflow with a real tracking store on local SQLite (and a local artifact folder)."""

from __future__ import annotations

import hashlib
import json
import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import provmark
from provmark import CaptureError, ConfigError

mlflow = pytest.importorskip("mlflow", reason="mlflow is not installable here")
pytest.importorskip("sqlalchemy", reason="the SQLite tracking store needs sqlalchemy")
from provmark.integrations import mlflow as pm_mlflow  # noqa: E402

pytestmark = pytest.mark.slow  # sets up a real tracker/repo/model: seconds


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("mlflow")
    patch = pytest.MonkeyPatch()
    patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    patch.setenv("DO_NOT_TRACK", "true")
    mlflow.set_tracking_uri(f"sqlite:///{root / 'tracking.db'}")
    mlflow.set_registry_uri(f"sqlite:///{root / 'tracking.db'}")
    mlflow.set_experiment(experiment_id=mlflow.create_experiment(
        "provmark", artifact_location=(root / "artifacts").as_uri()
    ))  # fmt: skip
    yield root
    mlflow.set_tracking_uri(None)
    patch.undo()


def artifacts(run_id: str, dst: Path) -> Path:
    return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="provmark",
                                                    dst_path=str(dst)))  # fmt: skip


def test_autolog_links_records_to_the_run(tracking: Path, pm: Any, tmp_path: Path) -> None:
    summarize = pm.capture(model=provmark.Model("acme/summarizer", version="1"))(
        lambda text, *, temperature=0.2: text.upper()
    )
    summarize("outside any run")
    with pm_mlflow.autolog(pm):
        with mlflow.start_run() as run:
            outs = [summarize(f"doc {i}", temperature=0.1 * i) for i in range(3)]
        with mlflow.start_run() as second:
            summarize("second run")
    for out in outs:
        r = pm.verify(out).record
        assert r.tags["mlflow.run_id"] == run.info.run_id
        assert r.tags["mlflow.experiment_id"] == run.info.experiment_id
    assert "mlflow.run_id" not in pm.verify("OUTSIDE ANY RUN").record.tags
    assert pm.verify("SECOND RUN").record.tags["mlflow.run_id"] == second.info.run_id

    got = mlflow.get_run(run.info.run_id)
    assert got.data.tags["provmark.records"] == "3"
    assert got.data.tags["provmark.origin"] == pm.store.origin
    folder = artifacts(run.info.run_id, tmp_path)
    rows = [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines()]
    assert [row["output_sha256"] for row in rows] == [
        hashlib.sha256(o.encode()).hexdigest() for o in outs
    ]
    assert got.data.tags["provmark.last_record_id"] == rows[-1]["record_id"]
    bundles = sorted((folder / "bundles").glob("*.provmark.json"))
    assert len(bundles) == 3
    for path in bundles:
        bundle = provmark.load_bundle(path)
        provmark.verify_bundle(bundle)  # offline: no store, no MLflow
    assert mlflow.get_run(second.info.run_id).data.tags["provmark.records"] == "1"


def test_model_identity_from_the_registry(tracking: Path, pm: Any, tmp_path: Path) -> None:
    weights = tmp_path / "model"
    weights.mkdir()
    (weights / "model.safetensors").write_bytes(b"\x00" * 64)
    (weights / "config.json").write_text('{"n_layer": 2}')
    client = mlflow.MlflowClient()
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(weights), "model")
    client.create_registered_model("tiny-summarizer")
    mv = client.create_model_version(
        "tiny-summarizer", f"{run.info.artifact_uri}/model", run_id=run.info.run_id
    )
    client.set_registered_model_alias("tiny-summarizer", "champion", mv.version)

    model = pm_mlflow.model_from_registry(f"models:/tiny-summarizer/{mv.version}")
    by_alias = pm_mlflow.model_from_registry("models:/tiny-summarizer@champion")
    assert (model.name, model.version, model.revision) == (
        "tiny-summarizer",
        str(mv.version),
        run.info.run_id,
    )
    with pm.record(model=by_alias, input="x") as rec:
        rec.set_output("from the registry")
    r = pm.get(rec.record_id)
    files = {f.path: f.sha256 for f in r.model.files}
    assert files["model.safetensors"] == hashlib.sha256(b"\x00" * 64).hexdigest()
    assert r.model.provider == "mlflow" and r.model.version == str(mv.version)

    assert set(files) == {"config.json", "model.safetensors"}

    with pytest.raises(ConfigError, match="not models:/"):
        pm_mlflow.model_from_registry("runs:/abc/model")
    with pytest.raises(ConfigError, match="models:/nope/1"):
        pm_mlflow.model_from_registry("models:/nope/1")


def test_pickled_models_are_hashed_file_by_file(tracking: Path, pm: Any, tmp_path: Path) -> None:
    """A model saved as pickles (no weight-file suffix) still gets its files and a digest,
    and two different models get different digests."""
    client = mlflow.MlflowClient()
    client.create_registered_model("pickled")
    digests = []
    for coef in (1.0, 2.0):
        folder = tmp_path / f"pickled-{coef}"
        (folder / "data").mkdir(parents=True)
        (folder / "data" / "model.pkl").write_bytes(pickle.dumps({"coef": coef}))
        (folder / "MLmodel").write_text("flavors:\n  python_function:\n    loader_module: x\n")
        (folder / "conda.yaml").write_text("dependencies: [python=3.11]\n")
        (folder / "__pycache__").mkdir()
        (folder / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"cache")
        with mlflow.start_run() as run:
            mlflow.log_artifacts(str(folder), "model")
        mv = client.create_model_version("pickled", f"{run.info.artifact_uri}/model",
                                         run_id=run.info.run_id)  # fmt: skip
        model = pm_mlflow.model_from_registry(f"models:/pickled/{mv.version}")
        with pm.record(model=model, input="x") as rec:
            rec.set_output(f"prediction {coef}")
        r = pm.get(rec.record_id)
        files = {f.path: f.sha256 for f in r.model.files}
        assert set(files) == {"MLmodel", "conda.yaml", "data/model.pkl"}
        assert files["data/model.pkl"] == hashlib.sha256(pickle.dumps({"coef": coef})).hexdigest()
        assert r.model.digest and r.model.digest.startswith("sha256:")
        digests.append(r.model.digest)
    assert digests[0] != digests[1]


def test_log_records_explicitly_and_the_failure_policy(
    tracking: Path, db_path: Path, home: Path, tmp_path: Path
) -> None:
    with provmark.open(db_path, home=home) as pm:
        with pm.record(model="m", input="a") as rec:
            rec.set_output("explicit")
        with mlflow.start_run() as run:
            pm_mlflow.log_records(pm, [rec.record_id], bundles=False)
        assert mlflow.get_run(run.info.run_id).data.tags["provmark.records"] == "1"
        assert not (artifacts(run.info.run_id, tmp_path) / "bundles").exists()
        with pytest.raises(CaptureError, match="MLflow run no-such-run"):
            pm_mlflow.log_records(pm, [rec.record_id], run_id="no-such-run")
        with pytest.raises(ConfigError, match="no active MLflow run"):
            pm_mlflow.log_records(pm, [rec.record_id])
    with provmark.open(db_path, home=home, policy="best_effort") as pm:
        pm_mlflow.log_records(pm, [rec.record_id], run_id="no-such-run")
        assert pm.capture_failures == 1


def test_missing_mlflow_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['mlflow'] = None\n"
        "from provmark.integrations import mlflow as m\n"
        "try:\n    m.autolog(None)\n"
        "except Exception as e:\n    print(type(e).__name__, e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("ConfigError") and "pip install 'provmark[mlflow]'" in out.stdout
