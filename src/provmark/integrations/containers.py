"""Containers and Kubernetes: the execution-context manifest and OCI image labels.

``context_manifest()`` is exactly the ``context`` part every record of this process
carries (``capture.environment.probe``), wrapped with the provmark version and a list
of what could not be found, so a container can show (``provmark context``) or insist
(``provmark context --require container.digest``) that its provenance is complete.

``container_labels()`` gives OCI image labels naming the model (name, version,
revision, weight-set digest, files) and datasets an image is built with, for a
Dockerfile ``LABEL`` (``provmark container-labels``). Keys live under ``dev.provmark.``;
the git commit goes in the standard ``org.opencontainers.image.revision``.

The probe's container id comes from ``/proc/self/cgroup`` (cgroup v1, and v2 paths
that name the container); :func:`container_id_from_mountinfo` finds it on cgroup v2
hosts where the cgroup path is just ``/``, and :func:`gpu_driver_from_proc` reads the
NVIDIA driver version that the NVIDIA container runtime exposes without NVML.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..capture.environment import DEFAULT_PACKAGES, git_info, probe
from ..capture.model import HashCache, Model
from ..errors import ConfigError

MEDIA_TYPE = "application/vnd.provmark.context+json;version=1"
LABEL_PREFIX = "dev.provmark."
EXPECTED = {
    "container.image": "PROVMARK_CONTAINER_IMAGE (the image reference)",
    "container.digest": "PROVMARK_CONTAINER_DIGEST (sha256:..., the image digest)",
    "container.id": "/proc/self/cgroup or /proc/self/mountinfo (inside a container)",
    "k8s.pod": "POD_NAME from the downward API (metadata.name)",
    "k8s.namespace": "POD_NAMESPACE from the downward API (metadata.namespace)",
    "k8s.node": "NODE_NAME from the downward API (spec.nodeName)",
    "gpu": "NVML (pip install nvidia-ml-py) and an NVIDIA driver",
    "git.commit": "a git checkout in the working directory",
}
_MOUNT_ID = re.compile(
    r"/(?:docker/containers|containers/storage/[^/]+-containers|containerd/[^ ]*?sandboxes)"
    r"/([0-9a-f]{64})/"
)
_NVIDIA = re.compile(r"Kernel Module(?:\s+for\s+\S+)?\s+(\d+\.\d+(?:\.\d+)?)")


def context_manifest(
    packages: Iterable[str] = DEFAULT_PACKAGES,
    *,
    env: Mapping[str, str] | None = None,
    git: bool = True,
) -> dict[str, Any]:
    """The execution context records of this process carry, with what is missing."""
    from .._version import __version__

    context = probe(packages, env=env, git=git)
    return {
        "media_type": MEDIA_TYPE,
        "provmark_version": __version__,
        "context": context,
        "missing": [part for part in EXPECTED if lookup(context, part) is None],
    }


def lookup(context: Mapping[str, Any], part: str) -> Any:
    """``lookup(ctx, "k8s.pod")``: a dotted part of a context, or None."""
    value: Any = context
    for key in part.split("."):
        if not isinstance(value, Mapping) or not value.get(key):
            return None
        value = value[key]
    return value


def require_parts(manifest: Mapping[str, Any], parts: Sequence[str]) -> list[str]:
    """Messages for each required part the manifest lacks (empty when all are there)."""
    problems = []
    for part in parts:
        if part not in EXPECTED:
            raise ConfigError(
                f"{part!r}: not a context part; choose from {', '.join(EXPECTED)}",
                field="require",
            )
        if lookup(manifest["context"], part) is None:
            problems.append(f"{part} is missing: set {EXPECTED[part]}")
    return problems


def container_id_from_mountinfo(path: str | Path = "/proc/self/mountinfo") -> str | None:
    """The container id from the mount table (Docker, Podman, containerd on cgroup v2)."""
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    match = _MOUNT_ID.search(text)
    return match.group(1) if match else None


def gpu_driver_from_proc(path: str | Path = "/proc/driver/nvidia/version") -> str | None:
    """The NVIDIA kernel driver version (e.g. ``550.54.15``), without NVML."""
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    match = _NVIDIA.search(text)
    return match.group(1) if match else None


def container_labels(
    *,
    model: Model | None = None,
    datasets: Sequence[Mapping[str, str]] = (),
    git: bool = True,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """OCI image labels for the model and datasets an image is built with."""
    from .._version import __version__

    labels = {LABEL_PREFIX + "version": __version__}
    if model is not None:
        ident = model.identity(HashCache())
        for key in ("name", "version", "provider", "revision", "digest"):
            if ident.get(key):
                labels[f"{LABEL_PREFIX}model.{key}"] = str(ident[key])
        if ident.get("files"):
            labels[LABEL_PREFIX + "model.files"] = _compact(ident["files"])
    if datasets:
        for i, ds in enumerate(datasets):
            if not isinstance(ds, Mapping) or not ds.get("uri"):
                raise ConfigError(f"datasets[{i}]: needs a uri")
        labels[LABEL_PREFIX + "datasets"] = _compact([dict(d) for d in datasets])
    if git:
        commit = git_info().get("commit")
        if commit:
            labels["org.opencontainers.image.revision"] = commit
    for key, value in (extra or {}).items():
        labels[key if "." in key else LABEL_PREFIX + key] = str(value)
    return labels


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def dockerfile_label(labels: Mapping[str, str]) -> str:
    """One Dockerfile ``LABEL`` instruction, a key per line."""
    parts = [f'{key}="{_dockerfile_quote(value)}"' for key, value in labels.items()]
    return "LABEL " + " \\\n      ".join(parts) + "\n"


def _dockerfile_quote(value: str) -> str:
    # inside double quotes Dockerfile honours backslash escapes and $ substitution
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")


def build_args(labels: Mapping[str, str]) -> str:
    """``--label key=value`` arguments for ``docker build``/``buildah``, shell-quoted."""
    return " ".join(f"--label {shlex.quote(f'{k}={v}')}" for k, v in labels.items()) + "\n"
