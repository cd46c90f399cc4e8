"""context, container-labels: what a container or an image says about its provenance."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..capture.environment import DEFAULT_PACKAGES
from ..capture.model import Model
from ..errors import ConfigError
from ..integrations import containers
from ..record import is_sha256
from .common import print_json


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "context",
        help="print the execution-context manifest (what records made here carry)",
        description="Print the execution context every record of this process carries "
        "(python, platform, packages, GPU, container image/digest, Kubernetes pod/node, "
        "git), and what could not be found. Exit 1 when a --require'd part is missing.",
    )
    p.add_argument(
        "--require",
        action="append",
        default=[],
        metavar="PART",
        help=f"fail (exit 1) unless this part is found: {', '.join(containers.EXPECTED)}",
    )
    p.add_argument(
        "--package",
        action="append",
        default=[],
        metavar="NAME",
        help="also report this package's version",
    )
    p.add_argument("--no-git", action="store_true", help="do not look for a git checkout")
    p.set_defaults(func=cmd_context)

    p = sub.add_parser(
        "container-labels",
        help="OCI image labels for the model and datasets an image is built with",
        description="Print OCI image labels naming the model (weights hashed), the datasets "
        "and the provmark version: a Dockerfile LABEL (default), JSON, or --label "
        "arguments for docker build.",
    )
    p.add_argument("--model-name", metavar="NAME", help="default: the model folder's name")
    p.add_argument("--model-version", metavar="VERSION")
    p.add_argument("--model-revision", metavar="REV", help="e.g. a hub commit")
    p.add_argument("--model-provider", metavar="PROVIDER")
    p.add_argument("--model-dir", metavar="DIR", help="hash the weights and config in DIR")
    p.add_argument(
        "--weights", action="append", default=[], metavar="FILE", help="hash this weight file"
    )
    p.add_argument(
        "--dataset",
        action="append",
        default=[],
        metavar="URI[=SHA256]",
        help="a dataset and, optionally, its SHA-256",
    )
    p.add_argument("--dvc", metavar="REPO", help="the datasets a DVC repository tracks")
    p.add_argument("--dvc-stage", metavar="STAGE", help="only this stage's dependencies")
    p.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="another label (a key without a dot goes under dev.provmark.)",
    )
    p.add_argument("--no-git", action="store_true", help="leave out the git commit")
    p.add_argument(
        "--format",
        choices=["dockerfile", "json", "build-args"],
        default="dockerfile",
        help="dockerfile: one LABEL instruction; build-args: --label k=v for docker build",
    )
    p.set_defaults(func=cmd_container_labels)


def cmd_context(args: argparse.Namespace) -> int:
    packages = [*DEFAULT_PACKAGES, *args.package]
    manifest = containers.context_manifest(packages, git=not args.no_git)
    problems = containers.require_parts(manifest, args.require)
    print_json(manifest)
    for problem in problems:
        print(f"provmark: context: {problem}", file=sys.stderr)
    return 1 if problems else 0


def cmd_container_labels(args: argparse.Namespace) -> int:
    model = _model(args)
    datasets = [_dataset(text) for text in args.dataset]
    if args.dvc:
        from ..integrations.dvc import Datasets

        datasets += Datasets(args.dvc, stage=args.dvc_stage).entries()
    elif args.dvc_stage:
        raise ConfigError("--dvc-stage needs --dvc REPO")
    extra = {}
    for text in args.label:
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise ConfigError(f"--label {text!r}: expected KEY=VALUE")
        extra[key] = value
    labels = containers.container_labels(
        model=model, datasets=datasets, git=not args.no_git, extra=extra
    )
    if args.format == "json":
        print_json(labels)
    elif args.format == "build-args":
        sys.stdout.write(containers.build_args(labels))
    else:
        sys.stdout.write(containers.dockerfile_label(labels))
    return 0


def _model(args: argparse.Namespace) -> Model | None:
    if not (args.model_name or args.model_dir or args.weights):
        return None
    name = args.model_name
    if name is None:
        if not args.model_dir:
            raise ConfigError("--model-name is needed with --weights")
        name = Path(args.model_dir).resolve().name
    options: dict[str, Any] = {
        "version": args.model_version,
        "revision": args.model_revision,
        "provider": args.model_provider,
        "directory": args.model_dir,
        "weights": args.weights or None,
    }
    if args.model_dir and not Path(args.model_dir).is_dir():
        raise ConfigError(f"--model-dir {args.model_dir}: not a folder")
    return Model(name, **options)


def _dataset(text: str) -> dict[str, str]:
    uri, sep, sha = text.rpartition("=") if "=" in text else (text, "", "")
    if sep and is_sha256(sha):
        return {"uri": uri, "sha256": sha}
    if sep and not uri:
        raise ConfigError(f"--dataset {text!r}: expected URI or URI=SHA256")
    return {"uri": text}
