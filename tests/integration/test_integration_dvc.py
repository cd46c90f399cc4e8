"""DVC with a real repository made by the dvc CLI in a temporary folder: a tracked file,
a tracked directory, a pipeline stage run by ``dvc repro`` and a local remote."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import provmark
from provmark import ConfigError

pytest.importorskip("dvc", reason="dvc is not installable here")
from provmark.integrations import dvc as pm_dvc

pytestmark = pytest.mark.slow  # sets up a real tracker/repo/model: seconds

DVC = [sys.executable, "-m", "dvc"]


def run(cwd: Path, *args: str) -> None:
    subprocess.run([*DVC, *args], cwd=cwd, check=True, capture_output=True, text=True)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dvc") / "repo"
    (root / "data" / "images").mkdir(parents=True)
    (root / "data" / "train.csv").write_text("text,label\nhello,1\nbye,0\n")
    (root / "data" / "images" / "a.txt").write_text("pixel a")
    (root / "data" / "images" / "b.txt").write_text("pixel b")
    (root / "prep.py").write_text(
        "import shutil\nshutil.copy('data/train.csv', 'data/clean.csv')\n"
    )
    run(root, "init", "--no-scm", "-q")
    run(root, "config", "core.analytics", "false")
    run(root, "add", "-q", "data/train.csv", "data/images")
    run(root, "stage", "add", "-q", "-n", "prepare", "-d", "data/train.csv", "-d", "prep.py",
        "-o", "data/clean.csv", f"{sys.executable} prep.py")  # fmt: skip
    run(root, "repro", "-q")
    return root


def datasets_of(record: Any) -> list[dict[str, Any]]:
    """input.datasets, or extra.datasets while the core has no Outcome.datasets yet."""
    if record.input.datasets:
        return [d.model_dump(exclude_none=True) for d in record.input.datasets]
    return list(record.extra.get("datasets", []))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def test_every_tracked_dataset_with_its_hashes(repo: Path) -> None:
    ds = pm_dvc.Datasets(repo)
    by_path = {d.path: d for d in ds.items}
    assert set(by_path) == {"data/clean.csv", "data/images", "data/train.csv"}
    train = by_path["data/train.csv"]
    assert train.sha256 == sha(repo / "data" / "train.csv")
    assert (
        train.uri
        == f"{(repo / 'data' / 'train.csv').as_uri()}#md5={md5(repo / 'data' / 'train.csv')}"
    )
    assert train.source == "data/train.csv.dvc"
    images = by_path["data/images"]
    assert images.md5.endswith(".dir")
    listing = repo / ".dvc" / "cache" / "files" / "md5" / images.md5[:2] / images.md5[2:]
    assert images.sha256 == sha(listing)
    assert {e["md5"] for e in json.loads(listing.read_text())} == {
        md5(repo / "data" / "images" / n) for n in ("a.txt", "b.txt")
    }
    assert by_path["data/clean.csv"].source == "dvc.lock"


def test_stage_deps_and_targets(repo: Path) -> None:
    assert [d.path for d in pm_dvc.Datasets(repo, stage="prepare").items] == ["data/train.csv"]
    picked = pm_dvc.Datasets(repo, targets=[repo / "data" / "images", "data/clean.csv"])
    assert [d.path for d in picked.items] == ["data/images", "data/clean.csv"]
    with pytest.raises(ConfigError, match=r"prep\.py is not tracked by DVC"):
        pm_dvc.Datasets(repo, targets=["prep.py"])
    with pytest.raises(ConfigError, match="no stage 'train'"):
        pm_dvc.Datasets(repo, stage="train")


def test_datasets_on_records(repo: Path, pm: Any) -> None:
    ds = pm_dvc.Datasets(repo, stage="prepare")
    with pm.record(model="acme/classifier", input="is this spam?") as rec:
        ds.attach(rec)
        rec.set_output("no")
    assert datasets_of(pm.get(rec.record_id)) == ds.entries()

    classify = pm.capture(model="acme/classifier")(lambda text: "yes")
    with pm_dvc.track(pm, pm_dvc.Datasets(repo)) as everything:
        classify("buy now")
    classify("untracked call")
    assert datasets_of(pm.verify("yes").record) == everything.entries()
    pm.flush()
    last = pm.find(limit=1).records[0]
    assert datasets_of(last) == [], "track() ended with its block"


def test_remote_urls_and_changed_data(repo: Path, tmp_path: Path) -> None:
    work = tmp_path / "repo"
    shutil.copytree(repo, work)
    remote = tmp_path / "remote"
    run(work, "remote", "add", "-d", "storage", str(remote))
    run(work, "push", "-q")
    ds = {d.path: d for d in pm_dvc.Datasets(work).items}
    train = ds["data/train.csv"]
    expected = remote / "files" / "md5" / train.md5[:2] / train.md5[2:]
    assert train.uri == expected.as_uri() and expected.is_file()
    assert ds["data/images"].uri.endswith(".dir")

    (work / "data" / "train.csv").write_text("text,label\ntampered,1\n")
    with pytest.raises(pm_dvc.DatasetChanged, match=r"train\.csv changed since DVC recorded it"):
        pm_dvc.Datasets(work, remote=False)
    (work / "data" / "train.csv").unlink()  # not checked out: the cache object is hashed
    again = {d.path: d for d in pm_dvc.Datasets(work, remote=False).items}
    assert again["data/train.csv"].sha256 == sha(repo / "data" / "train.csv")


def test_stage_dependencies_kept_in_git(
    tmp_path: Path, pm: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A stage whose data is committed to git (its md5 only in dvc.lock) yields datasets."""
    root = tmp_path / "gitrepo"
    (root / "refs").mkdir(parents=True)
    (root / "labels.json").write_text('{"spam": 1, "ham": 0}')
    (root / "refs" / "a.txt").write_text("reference a")
    (root / "score.py").write_text("open('score.txt', 'w').write('0.9')\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    run(root, "init", "-q")
    run(root, "config", "core.analytics", "false")
    run(root, "stage", "add", "-q", "-n", "score", "-d", "labels.json", "-d", "refs",
        "-d", "score.py", "-o", "score.txt", f"{sys.executable} score.py")  # fmt: skip
    run(root, "repro", "-q")
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "data in git"], cwd=root, check=True)

    with caplog.at_level("WARNING", logger="provmark.integrations"):
        ds = pm_dvc.Datasets(root, stage="score")
    by_path = {d.path: d for d in ds.items}
    assert set(by_path) == {"labels.json", "refs"}, "code deps are left out by default"
    labels = by_path["labels.json"]
    assert labels.sha256 == sha(root / "labels.json") and labels.source == "dvc.lock"
    assert labels.uri == f"{(root / 'labels.json').as_uri()}#md5={md5(root / 'labels.json')}"
    with pm.record(model="acme/scorer", input="x") as rec:
        ds.attach(rec)
        rec.set_output("0.9")
    assert {"uri": labels.uri, "sha256": labels.sha256} in datasets_of(pm.get(rec.record_id))
    if by_path["refs"].sha256 is None:  # a directory DVC did not cache: said, not silent
        assert "refs" in caplog.text and "md5 only" in caplog.text

    with_code = pm_dvc.Datasets(root, stage="score", code=True)
    assert "score.py" in {d.path for d in with_code.items}

    (root / "labels.json").write_text('{"spam": 0}')
    with pytest.raises(pm_dvc.DatasetChanged, match=r"labels\.json changed"):
        pm_dvc.Datasets(root, stage="score")

    lock = root / "dvc.lock"
    text = lock.read_text()
    lock.write_text(text.replace("- path: labels.json\n      hash: md5\n", "- path: labels.json\n"
                                 "      hash: md5\n      x", 1))  # fmt: skip
    caplog.clear()
    with caplog.at_level("WARNING", logger="provmark.integrations"):
        left = pm_dvc.Datasets(root, stage="score")
    assert "labels.json" not in {d.path for d in left.items}
    assert "dependency labels.json has no md5 in dvc.lock" in caplog.text


def test_bad_repositories(tmp_path: Path, repo: Path) -> None:
    with pytest.raises(ConfigError, match="is not a DVC repository"):
        pm_dvc.Datasets(tmp_path)
    work = tmp_path / "old"
    shutil.copytree(repo, work)
    lock = work / "dvc.lock"
    lock.write_text(lock.read_text().replace("schema: '2.0'", "schema: '9.0'"))
    with pytest.raises(ConfigError, match=r"schema '9\.0' is not supported"):
        pm_dvc.Datasets(work)
    lock.write_text("stages: [unclosed")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        pm_dvc.Datasets(work)


def test_missing_dvc_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['dvc'] = None\n"
        "from provmark.integrations import dvc as d\n"
        "try:\n    d.Datasets('.')\n"
        "except Exception as e:\n    print(type(e).__name__, e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("ConfigError") and "pip install 'provmark[dvc]'" in out.stdout
    assert provmark.ConfigError  # the error every integration raises for setup problems


def test_container_labels_from_a_dvc_stage(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from provmark.cli import main

    args = ["container-labels", "--dvc", str(repo), "--dvc-stage", "prepare"]
    assert main([*args, "--no-git", "--format", "json"]) == 0
    labels = json.loads(capsys.readouterr().out)
    (dataset,) = json.loads(labels["dev.provmark.datasets"])
    assert dataset["sha256"] == sha(repo / "data" / "train.csv")
    assert main(["container-labels", "--dvc-stage", "prepare"]) == 2
    assert "--dvc-stage needs --dvc REPO" in capsys.readouterr().err
