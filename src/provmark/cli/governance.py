"""retention, hold, archive, restore, backup, replay."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeAlias

from ..errors import ConfigError
from ..record import parse_time
from ..store.base import StoredRecord
from .common import Progress, add_db, open_from, open_store_from, print_json

Sub: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def register(sub: Sub) -> None:
    _register_retention(sub)
    _register_hold(sub)
    _register_archive(sub)
    _register_backup(sub)
    _register_replay(sub)


def _common(p: argparse.ArgumentParser, *, actor: bool = True) -> None:
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    if actor:
        p.add_argument("--actor", help="who does this, for the logged action (default: OS user)")
    add_db(p)


def _register_retention(sub: Sub) -> None:
    p = sub.add_parser("retention", help="retention policies: check, plan, apply")
    rsub = p.add_subparsers(dest="retention_command", metavar="ACTION", required=True)
    q = rsub.add_parser("check", help="check a policy file and print its rules")
    q.add_argument("policy", metavar="POLICY.toml")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_retention_check)
    for name, helptext in (
        ("plan", "what would be archived, erased or held now (changes nothing)"),
        ("apply", "archive past the hot period, erase past delete_after; logs every action"),
    ):
        q = rsub.add_parser(name, help=helptext)
        q.add_argument("policy", metavar="POLICY.toml")
        q.add_argument("--as-of", metavar="TIME", help="evaluate ages at this RFC 3339 time")
        if name == "apply":
            q.add_argument("--to", metavar="URL", help="archive root (default: [archive] to)")
        _common(q, actor=name == "apply")
        q.set_defaults(func=cmd_retention_plan if name == "plan" else cmd_retention_apply)


def _register_hold(sub: Sub) -> None:
    p = sub.add_parser("hold", help="legal holds: block archival and erasure")
    hsub = p.add_subparsers(dest="hold_command", metavar="ACTION", required=True)
    q = hsub.add_parser("add", help="place a hold on a record, a tag or a subject (user)")
    target = q.add_mutually_exclusive_group(required=True)
    target.add_argument("--record", metavar="ID", help="record id or slug")
    target.add_argument("--tag", metavar="KEY=VALUE", help="every record with this tag")
    target.add_argument("--subject", metavar="USER", help="every record made for this user")
    q.add_argument("--reason", required=True, help="why (case or ticket number)")
    _common(q)
    q.set_defaults(func=cmd_hold_add)
    q = hsub.add_parser("release", help="release a hold")
    q.add_argument("hold_id", help="the hold's id (see `provmark hold list`)")
    q.add_argument("--reason", required=True)
    _common(q)
    q.set_defaults(func=cmd_hold_release)
    q = hsub.add_parser("list", help="active holds")
    _common(q, actor=False)
    q.set_defaults(func=cmd_hold_list)


def _register_archive(sub: Sub) -> None:
    p = sub.add_parser(
        "archive", help="move records to Parquet (local folder or fsspec URL), verifiably"
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--list", action="store_true", help="list the archives this store wrote")
    mode.add_argument("--check", metavar="PATH", help="verify an archive root or manifest")
    mode.add_argument(
        "--audit", action="store_true", help="audit the store, counting archived rows as present"
    )
    p.add_argument("--to", metavar="URL", help="archive root: folder, file://, s3://, gs://, ...")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--older-than", metavar="AGE", help="records older than 90d, 12w, 1y ...")
    which.add_argument("--before", metavar="TIME", help="records generated before this time")
    which.add_argument("--policy", metavar="POLICY.toml", help="records past their hot period")
    p.add_argument("--model", help="only this model (with --older-than/--before)")
    p.add_argument("--as-of", metavar="TIME", help="with --policy: evaluate ages at this time")
    p.add_argument(
        "--keep-hot", action="store_true", help="write and verify the archive, keep the hot rows"
    )
    p.add_argument("--dry-run", action="store_true", help="only say what would be archived")
    _common(p)
    p.set_defaults(func=cmd_archive)

    p = sub.add_parser("restore", help="bring archived records back into the hot store")
    p.add_argument("path", metavar="PATH", help="archive root or one manifest .json")
    p.add_argument("--record", action="append", default=[], metavar="ID", help="only these")
    _common(p)
    p.set_defaults(func=cmd_restore)


def _register_backup(sub: Sub) -> None:
    p = sub.add_parser("backup", help="back up / restore the embedded SQLite store")
    bsub = p.add_subparsers(dest="backup_command", metavar="ACTION", required=True)
    q = bsub.add_parser("create", help="consistent online copy + sidecar manifest")
    q.add_argument("output", metavar="FILE")
    q.add_argument("--force", action="store_true", help="overwrite FILE")
    _common(q)
    q.set_defaults(func=cmd_backup_create)
    q = bsub.add_parser("verify", help="check a backup file against its sidecar")
    q.add_argument("file", metavar="FILE")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_backup_verify)
    q = bsub.add_parser("restore", help="audit a backup, then put it in place of --db")
    q.add_argument("file", metavar="FILE")
    q.add_argument("--force", action="store_true", help="replace an existing store (kept aside)")
    _common(q)
    q.set_defaults(func=cmd_backup_restore)


def _register_replay(sub: Sub) -> None:
    p = sub.add_parser("replay", help="re-run a recorded generation and compare output hashes")
    p.add_argument("record_id", help="record id or slug")
    p.add_argument(
        "--generator",
        action="append",
        default=[],
        metavar="MODULE:ATTR",
        help=(
            "a provmark.verification.replay.Generators or a function "
            "(also: entry points provmark.generators)"
        ),
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--input", metavar="FILE", help="the original input (when no snapshot)")
    src.add_argument("--input-text", metavar="TEXT", help="the original input as text")
    _common(p, actor=False)
    p.set_defaults(func=cmd_replay)


# ---------------------------------------------------------------- helpers


def _as_of(args: argparse.Namespace) -> datetime | None:
    if not getattr(args, "as_of", None):
        return None
    try:
        return parse_time(args.as_of)
    except ValueError as exc:
        raise ConfigError(f"--as-of: {exc}") from None


def _out(args: argparse.Namespace, obj: Any, lines: list[str]) -> None:
    if args.json:
        print_json(obj)
    else:
        print("\n".join(lines))


# ---------------------------------------------------------------- retention


def cmd_retention_check(args: argparse.Namespace) -> int:
    from ..governance import load_policy

    policy = load_policy(args.policy)
    rules = [r.describe() for r in policy.rules]
    if policy.default:
        rules.append(policy.default.describe())
    obj = {"policy": policy.source, "sha256": policy.sha256, "archive_to": policy.archive_to}
    _out(args, {**obj, "rules": rules}, [f"{policy.source}: OK", *[f"  {r}" for r in rules]])
    return 0


def cmd_retention_plan(args: argparse.Namespace) -> int:
    from ..governance import load_policy, plan

    policy = load_policy(args.policy)
    with open_store_from(args) as pm:
        result = plan(pm, policy, now=_as_of(args), progress=Progress("scanning"))
    obj = result.to_json()
    lines = [
        f"as of {result.now}: {result.hot} hot records, {result.hot_for_ever} under no rule",
        f"  archive {len(result.archive)}",
        f"  erase   {len(result.erase)}",
        f"  held    {len(result.held)} (blocked by a legal hold)",
    ]
    for c, action, hold in result.held[:20]:
        lines.append(f"    {c.record_id}  {action} blocked by hold {hold}")
    _out(args, obj, lines)
    return 0


def cmd_retention_apply(args: argparse.Namespace) -> int:
    from ..governance import apply, load_policy

    policy = load_policy(args.policy)
    with open_store_from(args) as pm:
        summary = apply(
            pm,
            policy,
            to=args.to,
            now=_as_of(args),
            actor=args.actor,
            progress=Progress("archiving"),
        )
    lines = [
        f"archived {summary['archived']}, erased {summary['erased']}, "
        f"held {summary['held']}  (logged as {summary['action_id']})",
        *[f"  archive {a}" for a in summary["archives"]],
    ]
    _out(args, summary, lines)
    return 0


# ---------------------------------------------------------------- holds


def cmd_hold_add(args: argparse.Namespace) -> int:
    from ..governance import place_hold

    with open_store_from(args) as pm:
        hold = place_hold(
            pm,
            record=args.record,
            tag=args.tag,
            subject=args.subject,
            reason=args.reason,
            actor=args.actor,
        )
    _out(args, hold.to_json(), [f"hold {hold.hold_id} on {hold.kind} {hold.value}"])
    return 0


def cmd_hold_release(args: argparse.Namespace) -> int:
    from ..governance import release_hold

    with open_store_from(args) as pm:
        action = release_hold(pm, args.hold_id, reason=args.reason, actor=args.actor)
    _out(args, {"released": args.hold_id, "action_id": action}, [f"released {args.hold_id}"])
    return 0


def cmd_hold_list(args: argparse.Namespace) -> int:
    from ..governance import active_holds

    with open_store_from(args) as pm:
        holds = active_holds(pm.log)
    lines = [
        f"{h.hold_id}  {h.kind:<7} {h.value:<40} {h.placed_at[:19]}Z  {h.reason}" for h in holds
    ] or ["no active holds"]
    _out(args, [h.to_json() for h in holds], lines)
    return 0


# ---------------------------------------------------------------- archive / restore


def cmd_archive(args: argparse.Namespace) -> int:
    from ..governance import audit_with_archives, known_archives, open_root
    from ..governance.archive_format import OpenedArchive, Pins

    if args.check:
        dest, ids = open_root(args.check)
        with _maybe_store(args) as pm:
            pins = Pins(pm.public_keys(), pm.log_verifier) if pm else Pins()
            checks = [
                OpenedArchive(dest, i, pins).check(pm.store if pm else None, Progress(i))
                for i in ids
            ]
        lines = [
            f"OK  {c.archive_id} rev {c.revision}: {c.records} records in {c.files} files, "
            f"{c.erased} erased, checkpoint {c.checkpoint_size}"
            for c in checks
        ]
        if pm is None:
            lines.append("(trust from the archive itself: pass --db to check against a store)")
        _out(args, [c.to_json() for c in checks], lines)
        return 0
    with open_store_from(args) as pm:
        if args.list:
            refs = known_archives(pm)
            lines = [
                f"{r.archive_id}  {r.count:>8} records  index {r.first_index}..{r.last_index}  "
                f"{r.uri}"
                for r in refs
            ] or ["no archives"]
            _out(args, [r.to_json() for r in refs], lines)
            return 0
        if args.audit:
            result = audit_with_archives(pm, Progress("auditing"))
            report = result.report
            lines = [
                f"records {report.records} hot, {result.archived} archived, {result.erased} "
                f"erased; log size {report.tree_size}",
                *[
                    f"  {f.kind:<13} {f.index} {f.record_id or ''} {f.detail}"
                    for f in report.findings
                ],
                "audit: OK" if report.ok else f"audit: {len(report.findings)} problems found",
            ]
            _out(args, result.to_json(), lines)
            return 0 if report.ok else 1
        return _archive_records(args, pm)


class _maybe_store:
    """The store when --db/PROVMARK_DB is given, else None (offline check)."""

    def __init__(self, args: argparse.Namespace) -> None:
        import os

        wanted = args.db or os.environ.get("PROVMARK_DB") or os.environ.get("PROVMARK_DATABASE_URL")
        self.pm = open_from(args) if wanted else None

    def __enter__(self) -> Any:
        return self.pm

    def __exit__(self, *exc: object) -> None:
        if self.pm is not None:
            self.pm.close()


def _archive_records(args: argparse.Namespace, pm: Any) -> int:
    from ..governance import create_archive, load_policy, plan
    from ..governance.ledger import active_holds, hold_on
    from ..governance.policy import parse_period

    policy = load_policy(args.policy) if args.policy else None
    to = args.to or (policy.archive_to if policy else None)
    if not to and not args.dry_run:
        raise ConfigError("--to: say where to archive (a folder or an fsspec URL)")
    records: list[StoredRecord]
    held = 0
    if policy is not None:
        result = plan(pm, policy, now=_as_of(args))
        records = [result.stored[c.index] for c in result.archive]
        held = sum(1 for _, action, _ in result.held if action == "archive")
    else:
        if args.older_than:
            age = parse_period(args.older_than, "--older-than")
            assert age is not None
            cutoff = datetime.now(UTC) - age
        elif args.before:
            try:
                cutoff = parse_time(args.before)
            except ValueError as exc:
                raise ConfigError(f"--before: {exc}") from None
        else:
            raise ConfigError("say what to archive: --older-than AGE, --before TIME or --policy")
        records, held = _older(pm, cutoff, args.model, active_holds(pm.log), hold_on)
    if args.dry_run or not records:
        obj = {"would_archive": len(records), "held": held, "to": to}
        _out(args, obj, [f"would archive {len(records)} records ({held} held) to {to}"])
        return 0
    assert to is not None
    made = create_archive(
        pm, records, to, keep_hot=args.keep_hot, actor=args.actor, progress=Progress("archiving")
    )
    lines = [
        f"archived {made.records} records in {made.files} files: {made.uri}",
        f"  verified; {made.removed_hot} rows removed from the hot store"
        + (f", {made.kept_hot_held} kept (held)" if made.kept_hot_held else ""),
        f"  manifest sha256 {made.manifest_sha256} (logged as {made.action_id})",
    ]
    _out(args, {**made.to_json(), "held": held}, lines)
    return 0


def _older(
    pm: Any, cutoff: datetime, model: str | None, holds: Any, hold_on: Any
) -> tuple[list[StoredRecord], int]:
    from ..governance.policy import GOVERNANCE_MODEL

    pm.flush()
    chosen: list[StoredRecord] = []
    held = 0
    for stored in pm.store.iter_records():
        data = json.loads(stored.payload)
        name = (data.get("model") or {}).get("name")
        if name == GOVERNANCE_MODEL or (model is not None and name != model):
            continue
        try:
            if parse_time(str(data.get("generated_at"))) >= cutoff:
                continue
        except ValueError:
            continue
        if hold_on(holds, stored.record_id, data) is not None:
            held += 1
            continue
        chosen.append(stored)
    return chosen, held


def cmd_restore(args: argparse.Namespace) -> int:
    from ..governance import restore_archive

    with open_store_from(args) as pm:
        result = restore_archive(
            pm, args.path, record_ids=args.record, actor=args.actor, progress=Progress("restoring")
        )
    lines = [
        f"restored {result['restored']} records ({result['already_hot']} were already hot) "
        f"from {len(result['archives'])} verified archive(s)"
    ]
    _out(args, result, lines)
    return 0


# ---------------------------------------------------------------- backup


def cmd_backup_create(args: argparse.Namespace) -> int:
    from ..governance import create_backup

    with open_store_from(args) as pm:
        info = create_backup(pm, args.output, force=args.force, actor=args.actor)
    lines = [
        f"backup {args.output}: {info['records']} records, log size {info['tree_size']}",
        f"  sha256 {info['sha256']}  (sidecar {args.output}.json)",
    ]
    _out(args, info, lines)
    return 0


def cmd_backup_verify(args: argparse.Namespace) -> int:
    from ..governance import check_backup

    info = check_backup(args.file)
    lines = [f"OK  {args.file}: {info['records']} records, log size {info['tree_size']}"]
    _out(args, info, lines)
    return 0


def cmd_backup_restore(args: argparse.Namespace) -> int:
    import os

    from ..governance import restore_backup
    from ..store.targets import resolve_target

    target = resolve_target(args.db)
    if target.startswith(("postgresql://", "postgres://", "http://", "https://")):
        raise ConfigError("--db: backup restore writes a SQLite file; see docs/operations.md")
    result = restore_backup(
        args.file, target, home=args.home or os.environ.get("PROVMARK_HOME"), force=args.force
    )
    audit = result["audit"]
    lines = [
        f"restored {target} from {args.file}: log size {result['tree_size']}",
        f"  audit OK ({audit['records']} hot, {audit['archived']} archived, "
        f"{audit['erased']} erased)",
    ]
    if result["replaced_file_kept_as"]:
        lines.append(f"  the replaced store is kept as {result['replaced_file_kept_as']}")
    _out(args, result, lines)
    return 0


# ---------------------------------------------------------------- replay


def cmd_replay(args: argparse.Namespace) -> int:
    from ..verification.replay import _MISSING, load_generators, replay

    given: Any = _MISSING
    if args.input_text is not None:
        given = args.input_text
    elif args.input:
        path = Path(args.input)
        if not path.is_file():
            raise ConfigError(f"--input {path}: no such file")
        given = path.read_bytes()
    with open_store_from(args) as pm:
        record = pm.get(args.record_id)
        generators = load_generators(args.generator, record)
        result = replay(pm, record.record_id, generators, input=given)
    lines = [
        f"{result.status.upper()}  {record.slug}  ({result.model})",
        f"  recorded  {' '.join(result.recorded_sha256)}",
        f"  replayed  {' '.join(result.replayed_sha256)}",
        f"  input     from {result.input_from}",
    ]
    if result.differences:
        lines.append("  differs from the recorded context:")
        lines += [f"    {d.field}: {d.recorded!r} then, {d.now!r} now" for d in result.differences]
    else:
        lines.append("  recorded context: same as now")
    lines += [f"  note: {n}" for n in result.notes]
    _out(args, result.to_json(), lines)
    sys.stdout.flush()
    return 0 if result.match else 1
