"""Execution context: probed once per :class:`~provmark.Provmark` and reused.

Python, OS/arch, hostname, versions of the packages that matter, GPUs (NVML
when ``pynvml`` is importable and a driver answers), container id and image
(from env or cgroup), Kubernetes pod/namespace/node (downward-API env vars),
and the git commit plus dirty flag of the working directory.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import socket
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

DEFAULT_PACKAGES = (
    "provmark",
    "torch",
    "transformers",
    "diffusers",
    "tokenizers",
    "safetensors",
    "accelerate",
    "numpy",
    "openai",
    "anthropic",
    "vllm",
    "jax",
    "tensorflow",
    "onnxruntime",
    "sentence-transformers",
)

_CGROUP_ID = re.compile(r"([0-9a-f]{64})")


def package_versions(names: Iterable[str]) -> dict[str, str]:
    found = {}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def gpu_info() -> list[dict[str, Any]]:
    """GPUs through NVML; empty when there is no NVIDIA driver or no ``pynvml``."""
    try:
        import pynvml  # type: ignore[import-not-found]
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except Exception:  # no driver: a normal CPU machine
        return []
    try:
        driver = _text(pynvml.nvmlSystemGetDriverVersion())
        try:
            cuda_v = pynvml.nvmlSystemGetCudaDriverVersion()
            cuda: str | None = f"{cuda_v // 1000}.{(cuda_v % 1000) // 10}"
        except Exception:
            cuda = None
        count = pynvml.nvmlDeviceGetCount()
        names: dict[str, int] = {}
        for i in range(count):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = _text(pynvml.nvmlDeviceGetName(handle))
            names[name] = names.get(name, 0) + 1
        return [{"name": n, "driver": driver, "cuda": cuda, "count": c} for n, c in names.items()]
    finally:
        pynvml.nvmlShutdown()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def container_info(
    env: Mapping[str, str], cgroup: Path = Path("/proc/self/cgroup")
) -> dict[str, str]:
    info: dict[str, str] = {}
    if env.get("PROVMARK_CONTAINER_IMAGE"):
        info["image"] = env["PROVMARK_CONTAINER_IMAGE"]
    if env.get("PROVMARK_CONTAINER_DIGEST"):
        info["digest"] = env["PROVMARK_CONTAINER_DIGEST"]
    try:
        match = _CGROUP_ID.search(cgroup.read_text())
        if match:
            info["id"] = match.group(1)
    except OSError:
        pass
    if not info and Path("/.dockerenv").exists():
        info["id"] = "unknown"
    return info


def k8s_info(env: Mapping[str, str]) -> dict[str, str]:
    info = {
        "namespace": env.get("POD_NAMESPACE") or env.get("K8S_NAMESPACE"),
        "pod": env.get("POD_NAME") or env.get("K8S_POD_NAME"),
        "node": env.get("NODE_NAME") or env.get("K8S_NODE_NAME"),
    }
    if not any(info.values()) and env.get("KUBERNETES_SERVICE_HOST"):
        info["pod"] = env.get("HOSTNAME")
    return {k: v for k, v in info.items() if v}


def git_info(cwd: str | Path | None = None) -> dict[str, Any]:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
        if commit.returncode != 0:
            return {}
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}


def probe(
    packages: Iterable[str] = DEFAULT_PACKAGES,
    *,
    config: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    git: bool = True,
) -> dict[str, Any]:
    """The ``context`` part of a record, as a plain dict (empty parts left out)."""
    env = os.environ if env is None else env
    context: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": f"{platform.system()}-{platform.release()}-{platform.machine()}",
        "hostname": socket.gethostname(),
        "packages": package_versions(packages),
    }
    gpus = gpu_info()
    if gpus:
        context["gpu"] = gpus
    container = container_info(env)
    if container:
        context["container"] = container
    k8s = k8s_info(env)
    if k8s:
        context["k8s"] = k8s
    repo = git_info() if git else {}
    if repo:
        context["git"] = repo
    if config:
        context["config"] = dict(config)
    if sys.flags.optimize:
        context.setdefault("config", {})["python_optimize"] = sys.flags.optimize
    return context
