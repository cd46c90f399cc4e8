"""What ``verify`` trusts and how its verdict is printed: shared by the commands that
verify (``verify``, ``verify --fuzzy``, ``c2pa-read --check-log``, the demo)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..crypto.keys import PublicKey, key_id_for, load_public_key
from ..errors import ConfigError, VerificationError
from ..verify import Verified, parse_checkpoint_body


def pinned_keys(args: argparse.Namespace) -> list[PublicKey] | None:
    keys: list[PublicKey] = []
    for pem_path in args.key:
        try:
            pem = Path(pem_path).read_text()
        except OSError as exc:
            raise ConfigError(f"--key {pem_path}: {exc.strerror}") from None
        key = load_public_key(pem)
        from ..crypto.keys import alg_of

        keys.append(
            PublicKey(
                key_id=key_id_for(key),
                alg=alg_of(key),
                public_key=pem,
                not_before="1970-01-01T00:00:00Z",
            )
        )
    if args.keyset:
        try:
            data = json.loads(Path(args.keyset).read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"--keyset {args.keyset}: {exc}") from None
        keys.extend(PublicKey.from_json(k) for k in data.get("keys", []))
    return keys or None


def trusted_checkpoint(args: argparse.Namespace) -> tuple[int, bytes] | None:
    if not args.trusted_checkpoint:
        return None
    try:
        note = Path(args.trusted_checkpoint).read_text()
    except OSError as exc:
        raise ConfigError(f"--trusted-checkpoint: {exc.strerror}") from None
    cp = parse_checkpoint_body(note)
    return cp.size, cp.root_hash


def keyset_of(args: argparse.Namespace) -> dict[str, Any]:
    if not args.keyset:
        return {}
    try:
        data = json.loads(Path(args.keyset).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--keyset {args.keyset}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--keyset {args.keyset}: not a key set export")
    return data


def pinned_log_key(args: argparse.Namespace, keyset: dict[str, Any]) -> str | None:
    """``--log-key``, else the log key of a pinned ``--keyset`` (pinned alike)."""
    stated = keyset.get("log_key")
    if args.log_key:
        return str(args.log_key)
    return stated if isinstance(stated, str) else None


def pinned_revocations(keyset: dict[str, Any], log_key: str | None) -> list[Any]:
    """The signed revocation list of a pinned key set, checked against its log key."""
    from ..crypto.revocation import open_revocations
    from ..log.note import parse_verifier_key

    note = keyset.get("revocations")
    if note is None:
        return []
    if not isinstance(note, str) or log_key is None:
        raise ConfigError("--keyset: its revocations need the log key (--log-key)")
    try:
        return open_revocations(note, parse_verifier_key(log_key))
    except VerificationError as exc:
        raise ConfigError(f"--keyset: {exc.detail}") from None


def c2pa_anchors(args: argparse.Namespace, keyset: dict[str, Any]) -> list[str]:
    """C2PA trust anchors: ``--trust``, a pinned key set's, the development CA if asked."""
    anchors = list(args.trust)
    stated = keyset.get("c2pa_trust_anchors")
    if isinstance(stated, list):
        anchors += [a for a in stated if isinstance(a, str)]
    if args.trust_dev_ca:
        from ..export.c2pa_certs import CA_FILE, default_dir

        ca = default_dir(args.home) / CA_FILE
        if not ca.is_file():
            raise ConfigError(f"--trust-dev-ca: no development CA at {ca} (provmark c2pa dev-cert)")
        anchors.append(str(ca))
    return anchors


def failed_report(exc: VerificationError) -> Any:
    """A failure from a verifier whose other checks this process cannot see."""
    from ..verification.report import FAIL, CheckResult, Report

    return Report([CheckResult(exc.check, FAIL, exc.detail)])


def report_of(v: Verified) -> Any:
    from ..verification.report import PASS, CheckResult, Report

    return Report([CheckResult(c.name, PASS, c.detail) for c in v.checks], v)


_MARKS = {"pass": "ok ", "fail": "FAIL", "not_run": "-- "}  # the failed line stands out


def print_report(report: Any, label: str) -> None:
    """The same block of checks whether verified or not, the failed check marked."""
    v = report.outcome
    print(f"{'VERIFIED' if report.verified else 'NOT VERIFIED'}  {label}")
    if v is not None:
        r = v.record
        model = " ".join(x for x in (r.model.name, r.model.version) if x)
        print(f"  record   {r.slug}  ({r.record_id})")
        print(f"  model    {model}" + (f"  [{r.model.digest}]" if r.model.digest else ""))
        if r.fallback:  # model is the one that answered
            print(f"  fallback asked for {r.fallback.requested_model}: {r.fallback.reason or ''}")
        who = f" for {r.actor.user_id}" if r.actor.user_id else ""
        print(f"  made     {r.generated_at}{who}  ({r.operation})")
        print(f"  log      index {v.index} of {v.tree_size}")
    elif report.subject.get("record_id"):
        print(f"  record   {report.subject['record_id']}")
    for c in report.checks:
        print(f"  {_MARKS[c.result]} {c.name:<21} {c.detail}")


def print_verified(v: Verified, label: str) -> None:
    print_report(report_of(v), label)
