"""erase, access-log, view: crypto-shredding, the log of decrypted reads, role views."""

from __future__ import annotations

import argparse
import getpass
import os

from ..client import Provmark
from ..privacy.views import ROLES, RecordView
from .common import add_db, open_store_from, print_json
from .records import record_json, record_lines


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "erase", help="crypto-shred a subject: its encrypted fields become unreadable"
    )
    p.add_argument("--subject", required=True, help="user id or tenant, as captured")
    p.add_argument("--reason", help="why (recorded, redacted)")
    _principal(p)
    p.add_argument("--json", action="store_true")
    add_db(p)
    p.set_defaults(func=cmd_erase)

    p = sub.add_parser("access-log", help="who decrypted which record, when and why")
    p.add_argument("--record", metavar="ID", help="only reads of this record")
    p.add_argument("--by", metavar="PRINCIPAL", help="only reads by this principal")
    p.add_argument("--since", help="RFC 3339 time")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--verify", action="store_true", help="recheck the hash chain first")
    _principal(p)
    p.add_argument("--json", action="store_true", help="JSON lines, one entry per line")
    add_db(p)
    p.set_defaults(func=cmd_access_log)

    p = sub.add_parser("view", help="one record as a role sees it")
    p.add_argument("record_id", help="record id or slug")
    p.add_argument("--role", required=True, choices=[r for r in ROLES if r != "ingest"])
    p.add_argument("--reason", help="why you read it (logged with auditor reads)")
    _principal(p)
    p.add_argument("--json", action="store_true")
    add_db(p)
    p.set_defaults(func=cmd_view)


def _principal(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--principal", help="who is acting (default: $PROVMARK_PRINCIPAL, else the OS user)"
    )


def _who(args: argparse.Namespace) -> str:
    return args.principal or os.environ.get("PROVMARK_PRINCIPAL") or getpass.getuser()


def _view(pm: Provmark, role: str, args: argparse.Namespace) -> RecordView:
    return pm.view(role, principal=_who(args), reason=getattr(args, "reason", None))


def cmd_erase(args: argparse.Namespace) -> int:
    with open_store_from(args) as pm:
        result = _view(pm, "admin", args).erase(args.subject, reason=args.reason)
    if args.json:
        print_json(result.to_json())
        return 0
    if result.already_erased:
        print(f"subject {result.subject} was already erased; nothing left to shred")
    else:
        print(f"erased subject {result.subject}: {result.keys_shredded} data key(s) destroyed")
    if not result.scrubbed:
        print("warning: the database file could not be compacted now (busy); run erase again")
    if result.record_id:
        print(f"erasure record {result.record_id}")
    return 0


def cmd_access_log(args: argparse.Namespace) -> int:
    with open_store_from(args) as pm:
        view = _view(pm, "admin", args)
        checked = view.verify_access_log() if args.verify else None
        entries = view.access_log(
            record_id=args.record, principal=args.by, since=args.since, limit=args.limit
        )
    if checked is not None and not args.json:
        print(f"access log: hash chain intact over {checked} entries")
    for e in entries:
        if args.json:
            print_json(e.to_json(), lines=True)
        else:
            reason = f"  reason: {e.reason}" if e.reason else ""
            print(
                f"{e.at[:19]}Z  {e.principal:<16} {e.role:<9} {e.action:<8} "
                f"{e.record_id or '-'}  {','.join(e.fields)}{reason}"
            )
    return 0


def cmd_view(args: argparse.Namespace) -> int:
    with open_store_from(args) as pm:
        record = _view(pm, args.role, args).get(args.record_id)
    if args.json:
        print_json(record_json(record))
    else:
        print("\n".join(record_lines(record)))
    return 0
