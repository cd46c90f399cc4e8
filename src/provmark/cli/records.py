"""verify, show, log, bundle, proof, checkpoint, audit."""

from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path
from typing import Any

from ..bundle import load_bundle, write_bundle
from ..capture.hashing import digest_output
from ..errors import ConfigError, VerificationError
from ..record import Record, is_sha256
from ..verification.audit import audit
from ..verify import Verified, parse_checkpoint_body
from . import trust as trust_cli
from .common import (
    Progress,
    add_db,
    open_from,
    open_store_from,
    parse_tags,
    print_json,
    read_content,
)
from .verdict import (
    c2pa_anchors,
    failed_report,
    keyset_of,
    pinned_keys,
    pinned_log_key,
    pinned_revocations,
    print_report,
    report_of,
    trusted_checkpoint,
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("verify", help="was this content made here, by what, and is it intact?")
    p.add_argument("file", nargs="?", help="file to check, or - for standard input")
    p.add_argument("--text", help="check this text instead of a file")
    p.add_argument(
        "--bundle", metavar="PATH", help="verify offline against a *.provmark.json bundle"
    )
    p.add_argument(
        "--archive",
        metavar="PATH",
        help="verify offline against a provmark archive (root folder/URL or a manifest)",
    )
    p.add_argument(
        "--key", action="append", default=[], metavar="PEM", help="pin a record public key"
    )
    p.add_argument("--keyset", metavar="JSON", help="pin the public keys of a keyset.json export")
    p.add_argument("--log-key", metavar="VKEY", help="pin the log's note verifier key")
    p.add_argument("--record", metavar="ID", help="check against this record id/slug only")
    p.add_argument(
        "--trusted-checkpoint", metavar="NOTE", help="older checkpoint: require consistency"
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument(
        "--fuzzy",
        action="store_true",
        help="also find edited, quoted or re-encoded copies (a lead, not a proof)",
    )
    trust_cli.add_verify_options(p)
    add_db(p)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("show", help="show one record")
    p.add_argument("record_id", help="record id or slug (pm-YYYYMMDD-xxxxxx)")
    p.add_argument("--json", action="store_true")
    add_db(p)
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("log", help="list records, newest first")
    p.add_argument("--model")
    p.add_argument("--actor", help="user id")
    p.add_argument("--operation")
    p.add_argument("--status", choices=["ok", "error"])
    p.add_argument("--output", metavar="SHA256|FILE", help="output hash or a file to hash")
    p.add_argument("--since", help="RFC 3339 time or an age: 30m, 6h, 2d, 1w")
    p.add_argument("--until", help="RFC 3339 time or an age")
    p.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--cursor")
    p.add_argument("--asc", action="store_true", help="oldest first")
    p.add_argument("--json", action="store_true", help="JSON lines, one record per line")
    add_db(p)
    p.set_defaults(func=cmd_log)

    p = sub.add_parser("bundle", help="write an offline bundle for a record")
    p.add_argument("record_id")
    p.add_argument("-o", "--output", metavar="PATH", help="default: <slug>.provmark.json")
    add_db(p)
    p.set_defaults(func=cmd_bundle)

    p = sub.add_parser("proof", help="inclusion proof of a record (JSON)")
    p.add_argument("record_id")
    add_db(p)
    p.set_defaults(func=cmd_proof)

    p = sub.add_parser("checkpoint", help="print the latest signed checkpoint")
    p.add_argument("--consistency-from", type=int, metavar="SIZE", help="also a consistency proof")
    p.add_argument("--json", action="store_true")
    add_db(p)
    p.set_defaults(func=cmd_checkpoint)

    p = sub.add_parser("audit", help="recompute every leaf and the root; report tampering")
    p.add_argument("--json", action="store_true")
    add_db(p)
    p.set_defaults(func=cmd_audit)


# ---------------------------------------------------------------- verify


def cmd_verify(args: argparse.Namespace) -> int:
    from ..bundle import bundle_report
    from ..verification.report import Report

    content, label = read_content(args)
    if args.fuzzy:
        from .softbind import verify_fuzzy

        return verify_fuzzy(args, content, label)
    keyset = keyset_of(args)
    log_key = pinned_log_key(args, keyset)
    anchors = c2pa_anchors(args, keyset)
    report: Report | None = None
    result: Verified | None = None
    if args.archive:
        from ..governance.archive_format import pins_from, verify_in_archive

        if args.bundle or args.trusted_checkpoint:
            raise ConfigError("--archive verifies alone: not with --bundle/--trusted-checkpoint")
        try:
            result = verify_in_archive(
                args.archive,
                digest_output(content).sha256,
                pins=pins_from(
                    pinned_keys(args),
                    args.log_key or log_key,
                    [*pinned_revocations(keyset, log_key), *trust_cli.revocations_file(args)],
                ),
                record_id=args.record,
            )
        except VerificationError as exc:
            report = failed_report(exc)
    elif args.bundle:
        if args.trusted_checkpoint:
            raise ConfigError("--trusted-checkpoint needs the log (a store), not a bundle")
        policy = trust_cli.bundle_policy(args, pinned_revocations(keyset, log_key), log_key)
        report = bundle_report(
            load_bundle(args.bundle),
            content_sha256=digest_output(content).sha256,
            keys=pinned_keys(args),
            log_key=log_key,
            policy=policy,
        )
    else:
        with open_from(args, read_only=True) as pm:
            if not hasattr(pm, "report"):  # a remote server answers with its own Verifier
                try:
                    result = pm.verify(content, record_id=args.record)
                except VerificationError as exc:
                    report = failed_report(exc)
            else:
                policy = trust_cli.policy_for(args, pm)
                report = pm.report(
                    content,
                    record_id=args.record,
                    trusted_checkpoint=trusted_checkpoint(args),
                    policy=policy.with_revocations(
                        pinned_revocations(keyset, log_key), "pinned key set's revocation list"
                    ),
                    c2pa_trust=anchors or None,
                )
    if report is None:
        assert result is not None
        report = report_of(result)
    if args.json:
        print_json({"content": label, **report.to_json()})
    else:
        print_report(report, label)
    report.raise_for_failure()  # a failure: exit 1 with the failed check on stderr
    return 0


# ---------------------------------------------------------------- show / log


def record_lines(r: Record) -> list[str]:
    lines = [f"record      {r.slug}  ({r.record_id})", f"status      {r.status}"]
    if r.error:
        lines.append(f"error       {r.error.type}: {r.error.message or ''}")
    lines.append(f"operation   {r.operation}")
    lines.append(f"model       {r.model.name} {r.model.version or ''}".rstrip())
    if r.model.digest:
        lines.append(f"  digest    {r.model.digest}")
    for f in r.model.files:
        lines.append(f"  file      {f.path}  sha256:{f.sha256}  {f.size} bytes")
    lines.append(f"started     {r.started_at}")
    lines.append(f"generated   {r.generated_at}")
    if r.input.sha256:
        lines.append(f"input       sha256:{r.input.sha256}")
    if r.input.snapshot:
        lines.append(f"  snapshot  {r.input.snapshot[:200]!r}")
    if r.input.seed is not None:
        lines.append(f"  seed      {r.input.seed}")
    if r.params:
        lines.append("params      " + json.dumps(r.params, sort_keys=True))
    if r.output:
        lines.append(
            f"output      sha256:{r.output.sha256}  {r.output.size} bytes  {r.output.media_type}"
        )
    actor = {k: v for k, v in r.actor.model_dump().items() if v}
    if actor:
        lines.append("actor       " + ", ".join(f"{k}={v}" for k, v in actor.items()))
    c = r.context
    lines.append(f"context     python {c.python}, {c.platform}, host {c.hostname}")
    if c.packages:
        lines.append("  packages  " + ", ".join(f"{k}=={v}" for k, v in c.packages.items()))
    if c.git:
        lines.append(f"  git       {c.git.commit}{' (dirty)' if c.git.dirty else ''}")
    if c.container:
        lines.append(f"  container {c.container.image or ''} {c.container.id or ''}".rstrip())
    if r.parents:
        lines.append("parents     " + ", ".join(r.parents))
    if r.tags:
        lines.append("tags        " + ", ".join(f"{k}={v}" for k, v in r.tags.items()))
    if r.usage:
        lines.append("usage       " + json.dumps(r.usage.model_dump(exclude_none=True)))
    if r.fallback:
        lines.append(f"fallback    {r.fallback.requested_model} -> {r.fallback.served_model}")
    if r.signature:
        lines.append(f"signature   {r.signature.alg} key {r.signature.key_id}")
    if r.log:
        lines.append(f"log         index {r.log.index}, leaf {r.log.leaf_hash}")
    return lines


def record_json(r: Record) -> dict[str, Any]:
    return {"slug": r.slug, **r.model_dump(mode="json", exclude_none=True)}


def cmd_show(args: argparse.Namespace) -> int:
    with open_from(args, read_only=True) as pm:
        r = pm.get(args.record_id)
    if args.json:
        print_json(record_json(r))
    else:
        print("\n".join(record_lines(r)))
    return 0


def cmd_log(args: argparse.Namespace) -> int:
    tags = parse_tags(args.tag)
    output: Any = args.output
    if output and not is_sha256(output):
        output = Path(output)
    with open_from(args, read_only=True) as pm:
        page = pm.find(
            output=output,
            model=args.model,
            actor=args.actor,
            operation=args.operation,
            status=args.status,
            since=args.since,
            until=args.until,
            tags=tags,
            limit=args.limit,
            cursor=args.cursor,
            order="asc" if args.asc else "desc",
        )
    for r in page.records:
        if args.json:
            print_json(record_json(r), lines=True)
        else:
            out = r.output.sha256[:12] if r.output else "-"
            model = f"{r.model.name}@{r.model.version}" if r.model.version else r.model.name
            print(
                f"{r.slug}  {r.generated_at[:19]}Z  {r.status:<5} {model:<28} {r.operation:<16} "
                f"{r.actor.user_id or '-':<20} {out}"
            )
    if page.next_cursor:
        print(f"more: --cursor {page.next_cursor}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------- log artefacts


def cmd_bundle(args: argparse.Namespace) -> int:
    with open_from(args, read_only=True) as pm:
        bundle = pm.bundle(args.record_id)
        slug = pm.get(args.record_id).slug
    path = args.output or f"{slug}.provmark.json"
    write_bundle(bundle, path)
    print(path)
    return 0


def cmd_proof(args: argparse.Namespace) -> int:
    with open_store_from(args, read_only=True) as pm:
        stored = pm.store.get(args.record_id)
        if stored is None:
            raise VerificationError("record", f"no record {args.record_id!r}")
        ev = pm.log.evidence(stored)
    print_json(
        {
            "record_id": stored.record_id,
            "index": ev.index,
            "leaf_hash": base64.b64encode(stored.leaf_hash()).decode(),
            "tree_size": parse_checkpoint_body(ev.checkpoint).size,
            "proof": [base64.b64encode(h).decode() for h in ev.proof],
            "checkpoint": ev.checkpoint,
        }
    )
    return 0


def cmd_checkpoint(args: argparse.Namespace) -> int:
    with open_store_from(args, read_only=True) as pm:
        cp = pm.latest_checkpoint()
        if cp is None:
            raise VerificationError("checkpoint", "the log is empty")
        proof = (
            pm.log.consistency_proof(args.consistency_from, cp.size)
            if args.consistency_from is not None
            else None
        )
        log_key = pm.log_verifier.key_string()
    if args.json:
        out: dict[str, Any] = {
            "size": cp.size,
            "root": base64.b64encode(cp.root).decode(),
            "note": cp.note,
            "created_at": cp.created_at,
            "log_key": log_key,
        }
        if proof is not None:
            out["consistency"] = {
                "from": args.consistency_from,
                "proof": [base64.b64encode(h).decode() for h in proof],
            }
        print_json(out)
    else:
        sys.stdout.write(cp.note)
    return 0


def _audit(pm: Any) -> Any:
    """The audit; rows moved to a verified archive (``provmark archive``) count as present."""
    try:
        from ..governance.archive import audit_with_archives
    except ImportError:  # pyarrow not installed: no archives can exist
        return audit(pm, progress=Progress("auditing"))
    return audit_with_archives(pm, progress=Progress("auditing")).report


def cmd_audit(args: argparse.Namespace) -> int:
    with open_from(args, read_only=True) as pm:
        report = _audit(pm)
    if args.json:
        print_json(report.to_json())
    else:
        print(
            f"records {report.records}, log size {report.tree_size}, "
            f"checkpoint {report.checkpoint_size}"
        )
        for f in report.findings:
            where = f"index {f.index}" if f.index is not None else "log"
            print(f"  {f.kind:<13} {where:<12} {f.record_id or '':<38} {f.detail}")
        print(
            "audit: OK, nothing altered, deleted, inserted or reordered"
            if report.ok
            else f"audit: {len(report.findings)} problems found"
        )
    return 0 if report.ok else 1
