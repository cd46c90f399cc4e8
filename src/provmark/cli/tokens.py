"""tokens create | list | revoke: API tokens of ``provmark serve`` (stored hashed)."""

from __future__ import annotations

import argparse
import os

from ..server.auth import ROLES, TokenStore
from ..server.state import StateDB, resolve_state
from ..store.targets import resolve_target
from .common import print_json


def add_state(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--state",
        metavar="TARGET",
        help="server state (tokens, audit log, webhooks): SQLite file or postgresql:// URL "
        "(default: $PROVMARK_SERVER_STATE, else the --db when it is PostgreSQL, "
        "else <home>/server.db)",
    )
    p.add_argument(
        "--db", metavar="TARGET", help="the record store the server uses (to find its state)"
    )
    p.add_argument(
        "--home", metavar="DIR", help="keys and config (default: $PROVMARK_HOME or ~/.provmark)"
    )


def open_state(args: argparse.Namespace) -> StateDB:
    db = args.db or os.environ.get("PROVMARK_DB") or os.environ.get("PROVMARK_DATABASE_URL")
    return StateDB(resolve_state(args.state, resolve_target(db) if db else None, args.home))


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("tokens", help="API tokens for provmark serve: create, list, revoke")
    ts = p.add_subparsers(dest="tokens_command", metavar="ACTION", required=True)

    q = ts.add_parser("create", help="make a token; it is printed once, on the last line")
    q.add_argument("--role", required=True, choices=ROLES)
    q.add_argument("--name", default="", help="who or what uses it")
    add_state(q)
    q.set_defaults(func=cmd_create)

    q = ts.add_parser("list", help="tokens (never the tokens themselves)")
    q.add_argument("--all", action="store_true", help="include revoked tokens")
    q.add_argument("--json", action="store_true")
    add_state(q)
    q.set_defaults(func=cmd_list)

    q = ts.add_parser("revoke", help="revoke a token by its id (or the token itself)")
    q.add_argument("token_id")
    add_state(q)
    q.set_defaults(func=cmd_revoke)


def cmd_create(args: argparse.Namespace) -> int:
    db = open_state(args)
    try:
        token, info = TokenStore(db).create(args.role, args.name)
    finally:
        db.close()
    print(f"token id {info.token_id}, role {info.role}; store it now, it is not shown again:")
    print(token)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    db = open_state(args)
    try:
        tokens = TokenStore(db).tokens(include_revoked=args.all)
    finally:
        db.close()
    if args.json:
        print_json({"tokens": [t.to_json() for t in tokens]})
        return 0
    for t in tokens:
        j = t.to_json()
        state = "active" if j["active"] else f"revoked {j['revoked_at']}"
        print(
            f"{t.token_id}  {t.role:<9} {j['created_at']}  "
            f"last used {j['last_used_at'] or '-':<20}  "
            f"{state}  {t.name}"
        )
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    db = open_state(args)
    try:
        info = TokenStore(db).revoke(args.token_id)
    finally:
        db.close()
    print(f"revoked {info.token_id} ({info.role})")
    return 0
