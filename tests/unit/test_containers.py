"""Containers and Kubernetes: the probe against simulated cgroup/mountinfo/proc files and
downward-API environments, the example manifests, OCI labels and the two commands."""

from __future__ import annotations

import hashlib
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from provmark import ConfigError, Model
from provmark.capture import environment
from provmark.cli import main
from provmark.integrations import containers

yaml = pytest.importorskip("yaml")

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "inference"
CID = "3f4e8a1c" * 8
DIGEST = "sha256:" + "ab" * 32


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "cgroup",
    [
        f"12:memory:/docker/{CID}\n11:cpu:/docker/{CID}\n",  # cgroup v1, Docker
        f"0::/kubepods.slice/kubepods-burstable.slice/cri-containerd-{CID}.scope\n",  # v2, k8s
        f"0::/system.slice/docker-{CID}.scope\n",  # v2, Docker with the systemd driver
    ],
)
def test_probe_finds_the_container_id_in_cgroup_files(tmp_path: Path, cgroup: str) -> None:
    info = environment.container_info({}, cgroup=write(tmp_path, "cgroup", cgroup))
    assert info == {"id": CID}


def test_cgroup_v2_namespace_root_needs_mountinfo(tmp_path: Path) -> None:
    cgroup = write(tmp_path, "cgroup", "0::/\n")
    # nothing in the cgroup file ("unknown" only where /.dockerenv exists)
    assert environment.container_info({}, cgroup=cgroup).get("id") in (None, "unknown")
    docker = write(
        tmp_path,
        "mountinfo-docker",
        "612 590 0:55 / / rw,relatime master:300 - overlay overlay rw\n"
        f"640 612 254:1 /var/lib/docker/containers/{CID}/hostname /etc/hostname rw - ext4\n",
    )
    assert containers.container_id_from_mountinfo(docker) == CID
    podman = write(
        tmp_path,
        "mountinfo-podman",
        f"701 690 0:61 /containers/storage/overlay-containers/{CID}/userdata/hosts /etc/hosts "
        "rw - tmpfs\n",
    )
    assert containers.container_id_from_mountinfo(podman) == CID
    plain = write(tmp_path, "mountinfo-host", "22 1 254:1 / / rw,relatime - ext4 /dev/vda rw\n")
    assert containers.container_id_from_mountinfo(plain) is None
    assert containers.container_id_from_mountinfo(tmp_path / "absent") is None


def test_gpu_driver_from_the_nvidia_proc_file(tmp_path: Path) -> None:
    text = (
        "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024\n"
        "GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n"
    )
    assert containers.gpu_driver_from_proc(write(tmp_path, "version", text)) == "550.54.15"
    open_kernel = "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  570.86.10  Release\n"
    assert containers.gpu_driver_from_proc(write(tmp_path, "v2", open_kernel)) == "570.86.10"
    assert containers.gpu_driver_from_proc(tmp_path / "absent") is None


def downward_api(env: list[dict[str, Any]], pod: dict[str, str]) -> dict[str, str]:
    """What the kubelet puts in the environment for a pod: plain values and fieldRefs."""
    out = {}
    for item in env:
        if "value" in item:
            out[item["name"]] = str(item["value"])
        ref = (item.get("valueFrom") or {}).get("fieldRef")
        if ref and ref["fieldPath"] in pod:
            out[item["name"]] = pod[ref["fieldPath"]]
    return out


POD = {
    "metadata.name": "summarizer-7d9f-x2k",
    "metadata.namespace": "acme",
    "spec.nodeName": "gpu-node-3",
    "metadata.labels['app.kubernetes.io/name']": "summarizer",
}


def app_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = [d for d in docs if d and d.get("kind") == "Deployment"]
    (app,) = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "app"]
    return app


def test_manifest_exposes_what_the_probe_reads() -> None:
    app = app_container(list(yaml.safe_load_all((K8S / "inference.yaml").read_text())))
    env = {e["name"]: e for e in app["env"]}
    refs = {n: e["valueFrom"]["fieldRef"]["fieldPath"] for n, e in env.items() if "valueFrom" in e
            and "fieldRef" in e["valueFrom"]}  # fmt: skip
    assert refs["POD_NAME"] == "metadata.name"
    assert refs["POD_NAMESPACE"] == "metadata.namespace"
    assert refs["NODE_NAME"] == "spec.nodeName"
    assert {"PROVMARK_CONTAINER_IMAGE", "PROVMARK_CONTAINER_DIGEST"} <= set(env)
    assert "utility" in env["NVIDIA_DRIVER_CAPABILITIES"]["value"]  # NVML inside the pod
    assert "@sha256:" in app["image"], "the image is pinned by digest"
    context = environment.probe((), env=downward_api(app["env"], POD), git=False)
    assert context["k8s"] == {
        "namespace": "acme",
        "pod": "summarizer-7d9f-x2k",
        "node": "gpu-node-3",
    }
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    targets = [
        path
        for r in kustomization["replacements"]
        for t in r["targets"]
        for path in t["fieldPaths"]
    ]
    assert any("PROVMARK_CONTAINER_DIGEST" in p for p in targets)
    assert any("PROVMARK_CONTAINER_IMAGE" in p for p in targets)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (kustomize) not installed")
def test_kustomize_build_puts_the_image_digest_in_the_probe_env(tmp_path: Path) -> None:
    # what `kustomize edit set image ...` in deploy/k8s/inference writes
    base = tmp_path / "inference"
    shutil.copytree(K8S, base)
    with open(base / "kustomization.yaml", "a") as fh:
        fh.write(
            "images:\n"
            "  - name: registry.example.com/acme/summarizer\n"
            f"    newTag: 1.5.0\n    digest: {DIGEST}\n"
        )
    built = subprocess.run(
        ["kubectl", "kustomize", str(base)], capture_output=True, text=True, check=True
    ).stdout
    app = app_container(list(yaml.safe_load_all(built)))
    env = downward_api(app["env"], POD)
    manifest = containers.context_manifest((), env=env, git=False)
    assert manifest["context"]["container"]["digest"] == DIGEST
    assert (
        manifest["context"]["container"]["image"]
        == f"registry.example.com/acme/summarizer:1.5.0@{DIGEST}"
    )
    assert containers.require_parts(manifest, ["container.digest", "k8s.pod", "k8s.node"]) == []


def test_context_manifest_and_required_parts() -> None:
    manifest = containers.context_manifest((), env={"POD_NAME": "p"}, git=False)
    assert manifest["media_type"] == containers.MEDIA_TYPE
    assert manifest["context"]["k8s"] == {"pod": "p"}
    assert "k8s.pod" not in manifest["missing"] and "k8s.node" in manifest["missing"]
    (problem,) = containers.require_parts(manifest, ["k8s.pod", "k8s.node"])
    assert problem.startswith("k8s.node is missing: set NODE_NAME")
    with pytest.raises(ConfigError, match="not a context part"):
        containers.require_parts(manifest, ["k8s.cluster"])


def test_container_labels(tmp_path: Path) -> None:
    weights = write(tmp_path, "model.safetensors", "weights")
    model = Model("acme/summarizer", version="3.2", weights=weights)
    datasets = [{"uri": "s3://data/train.csv", "sha256": "0" * 64}]
    labels = containers.container_labels(
        model=model, datasets=datasets, git=False, extra={"team": 'nlp "core" $HOME'}
    )
    assert labels["dev.provmark.model.name"] == "acme/summarizer"
    assert labels["dev.provmark.model.version"] == "3.2"
    files = json.loads(labels["dev.provmark.model.files"])
    assert files == [
        {"path": "model.safetensors", "sha256": hashlib.sha256(b"weights").hexdigest(), "size": 7}
    ]
    assert labels["dev.provmark.model.digest"].startswith("sha256:")
    assert json.loads(labels["dev.provmark.datasets"]) == datasets
    assert labels["dev.provmark.team"] == 'nlp "core" $HOME'
    text = containers.dockerfile_label(labels)
    assert text.startswith("LABEL dev.provmark.version=")
    assert 'dev.provmark.team="nlp \\"core\\" \\$HOME"' in text
    args = shlex.split(containers.build_args(labels))
    assert dict(a.split("=", 1) for a in args[1::2]) == labels
    with pytest.raises(ConfigError, match=r"datasets\[0\]: needs a uri"):
        containers.container_labels(datasets=[{"sha256": "0" * 64}], git=False)


def test_context_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POD_NAME", "summarizer-1")
    monkeypatch.setenv("PROVMARK_CONTAINER_DIGEST", DIGEST)
    monkeypatch.delenv("NODE_NAME", raising=False)
    assert (
        main(["context", "--no-git", "--require", "k8s.pod", "--require", "container.digest"]) == 0
    )
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["context"]["container"]["digest"] == DIGEST
    assert main(["context", "--no-git", "--require", "k8s.node"]) == 1
    assert "k8s.node is missing: set NODE_NAME" in capsys.readouterr().err
    assert main(["context", "--require", "nope"]) == 2


def test_container_labels_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model_dir = tmp_path / "tiny"
    model_dir.mkdir()
    write(model_dir, "model.safetensors", "w")
    write(model_dir, "config.json", "{}")
    sha = "1" * 64
    code = main(["container-labels", "--model-dir", str(model_dir), "--model-version", "1",
                 "--dataset", f"s3://b/data.csv?v=2={sha}", "--dataset", "hf://datasets/x",
                 "--no-git", "--format", "json"])  # fmt: skip
    assert code == 0
    labels = json.loads(capsys.readouterr().out)
    assert labels["dev.provmark.model.name"] == "tiny"
    assert {f["path"] for f in json.loads(labels["dev.provmark.model.files"])} == {
        "config.json",
        "model.safetensors",
    }
    assert json.loads(labels["dev.provmark.datasets"]) == [
        {"uri": "s3://b/data.csv?v=2", "sha256": sha},
        {"uri": "hf://datasets/x"},
    ]
    assert main(["container-labels", "--weights", "w.bin"]) == 2
    assert "--model-name is needed" in capsys.readouterr().err
    assert main(["container-labels", "--model-dir", str(tmp_path / "nope")]) == 2
    out = subprocess.run(
        [sys.executable, "-m", "provmark.cli", "container-labels", "--model-name", "m", "--no-git"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.startswith('LABEL dev.provmark.version="') and 'dev.provmark.model.name="m"' in out
