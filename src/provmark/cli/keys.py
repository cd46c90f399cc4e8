"""keys list | rotate | export."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import ConfigError
from .common import add_db, open_store_from, print_json


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("keys", help="signing keys: list, rotate, export the public key set")
    ks = p.add_subparsers(dest="keys_command", metavar="ACTION", required=True)

    q = ks.add_parser("list", help="every public key with its validity window")
    q.add_argument("--json", action="store_true")
    add_db(q)
    q.set_defaults(func=cmd_list)

    q = ks.add_parser("rotate", help="start a new record-signing key; old ones stay for verifying")
    q.add_argument("--alg", choices=["Ed25519", "ES256"], help="algorithm of the new key")
    add_db(q)
    q.set_defaults(func=cmd_rotate)

    from . import trust

    trust.add_revoke_arguments(ks.add_parser("revoke", help="revoke a record key since a time"))

    q = ks.add_parser("export", help="write the public key set (JSON) that verifiers pin")
    q.add_argument("-o", "--output", metavar="PATH", help="default: standard output")
    q.add_argument(
        "--c2pa-trust",
        action="append",
        default=[],
        metavar="PEM",
        help="C2PA trust anchors (CA certificates) verifiers of this key set accept",
    )
    add_db(q)
    q.set_defaults(func=cmd_export)


def cmd_list(args: argparse.Namespace) -> int:
    with open_store_from(args) as pm:
        keys = pm.public_keys()
        log_key = pm.log_verifier.key_string()
    if args.json:
        print_json({"keys": [k.to_json() for k in keys], "log_key": log_key})
        return 0
    for k in sorted(keys, key=lambda k: k.not_before):
        state = "current" if k.not_after is None else f"retired {k.not_after}"
        print(f"{k.key_id}  {k.alg:<8} {k.purpose:<8} from {k.not_before}  {state}")
    print(f"log verifier key: {log_key}")
    return 0


def cmd_rotate(args: argparse.Namespace) -> int:
    with open_store_from(args) as pm:
        key = pm.rotate_keys(args.alg)
    print(f"new key {key.key_id} ({key.alg}) from {key.not_before}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    with open_store_from(args) as pm:
        body: dict[str, object] = {
            "keys": [k.to_json() for k in pm.public_keys()],
            "log_key": pm.log_verifier.key_string(),
            "origin": pm.store.origin,
            "revocations": pm.log.signed_revocations(),  # a note signed by the log key
        }
    if args.c2pa_trust:
        try:
            body["c2pa_trust_anchors"] = [Path(p).read_text() for p in args.c2pa_trust]
        except OSError as exc:
            raise ConfigError(f"--c2pa-trust: {exc}") from None
    if args.output:
        Path(args.output).write_text(json.dumps(body, indent=2) + "\n")
        print(args.output)
    else:
        print_json(body)
    return 0
