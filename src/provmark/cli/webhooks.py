"""webhooks add | list | remove | deliveries: subscriptions of ``provmark serve``."""

from __future__ import annotations

import argparse

from ..crypto.fieldenc import MasterKey
from ..server.webhooks import EVENTS, WebhookStore
from .common import print_json
from .tokens import add_state, open_state


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "webhooks", help="webhook subscriptions of provmark serve: add, list, remove"
    )
    ws = p.add_subparsers(dest="webhooks_command", metavar="ACTION", required=True)

    q = ws.add_parser(
        "add", help="subscribe a URL; prints the signing secret once, on the last line"
    )
    q.add_argument("url")
    q.add_argument(
        "--event",
        action="append",
        choices=EVENTS,
        dest="events",
        help="an event to send (repeatable; default: all)",
    )
    q.add_argument("--description", default="")
    add_state(q)
    q.set_defaults(func=cmd_add)

    q = ws.add_parser("list", help="subscriptions")
    q.add_argument("--json", action="store_true")
    add_state(q)
    q.set_defaults(func=cmd_list)

    q = ws.add_parser("remove", help="remove a subscription (pending deliveries are dropped)")
    q.add_argument("sub_id")
    add_state(q)
    q.set_defaults(func=cmd_remove)

    q = ws.add_parser("deliveries", help="the delivery log; --dead for dead letters only")
    q.add_argument("sub_id", nargs="?")
    q.add_argument("--dead", action="store_true")
    q.add_argument("--limit", type=int, default=50)
    q.add_argument("--json", action="store_true")
    add_state(q)
    q.set_defaults(func=cmd_deliveries)


def _master(args: argparse.Namespace) -> MasterKey:
    """The ``master`` secret of the home the server uses (its vault's default master key):
    webhook secrets are kept sealed under it."""
    from pathlib import Path

    from ..crypto.fieldenc import LocalMasterKey
    from ..crypto.keystore import FileKeyStore

    home = Path(args.home) / "keys" if args.home else None
    return LocalMasterKey(FileKeyStore(home).secret("master"))


def cmd_add(args: argparse.Namespace) -> int:
    db = open_state(args)
    try:
        s = WebhookStore(db, _master(args)).add(
            args.url, args.events or list(EVENTS), args.description
        )
    finally:
        db.close()
    print(f"webhook {s.sub_id} -> {s.url} for {', '.join(s.events)}")
    print("signing secret (Standard Webhooks; store it now, it is not shown again):")
    print(s.secret)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    db = open_state(args)
    try:
        subs = WebhookStore(db).subscriptions()
    finally:
        db.close()
    if args.json:
        print_json({"webhooks": [s.to_json() for s in subs]})
        return 0
    for s in subs:
        print(f"{s.sub_id}  {s.url}  {','.join(s.events)}  {s.description}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    db = open_state(args)
    try:
        WebhookStore(db).remove(args.sub_id)
    finally:
        db.close()
    print(f"removed {args.sub_id}")
    return 0


def cmd_deliveries(args: argparse.Namespace) -> int:
    db = open_state(args)
    try:
        found = WebhookStore(db).deliveries(
            sub_id=args.sub_id, status="dead" if args.dead else None, limit=args.limit
        )
    finally:
        db.close()
    if args.json:
        print_json({"deliveries": [d.to_json() for d in found]})
        return 0
    for d in found:
        j = d.to_json()
        print(
            f"{d.delivery_id}  {d.sub_id}  {d.event_type:<20} {d.status:<9} attempts {d.attempts}  "
            f"{j['created_at']}  {d.last_error or ''}"
        )
    return 0
