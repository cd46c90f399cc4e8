"""witness ..., timestamp ..., keys-revoke: trust that does not rest on one server.

Also the ``--witnesses/--min/--tsa-cert/--revocations`` options of ``provmark verify``
(:func:`add_verify_options`, :func:`policy_for`, :func:`bundle_policy`).
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

from ..crypto.revocation import Revocation, RevocationList, parse_since
from ..errors import ConfigError, VerificationError
from ..witness import (
    TrustArchive,
    TrustPolicy,
    Witness,
    WitnessServer,
    load_witnesses,
    witness_checkpoint,
    witnessed_bundle,
)
from .common import add_db, open_store_from, print_json


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    _register_witness(sub)
    _register_timestamp(sub)
    # the older spelling of `keys revoke`, kept working for scripts but not listed in --help
    add_revoke_arguments(sub.add_parser("keys-revoke"))


# ---------------------------------------------------------------- verify options


def add_verify_options(p: argparse.ArgumentParser) -> None:
    """The trust options of ``provmark verify``."""
    p.add_argument(
        "--witnesses",
        metavar="FILE",
        help="witness keys (one C2SP vkey per line): require their cosignatures",
    )
    p.add_argument(
        "--min",
        type=int,
        metavar="K",
        help="cosignatures required from the --witnesses (default: all of them)",
    )
    p.add_argument(
        "--tsa-cert",
        action="append",
        default=[],
        metavar="PEM",
        help="pin a time-stamping authority's root CA: require an RFC 3161 timestamp",
    )
    p.add_argument(
        "--revocations",
        metavar="FILE",
        help="another revocation list to honour (revocations.json beside the key set, a "
        "bundle's and a pinned --keyset's signed lists always apply)",
    )
    p.add_argument(
        "--trust",
        action="append",
        default=[],
        metavar="PEM",
        help="C2PA trust anchors: a manifest not bound to a recorded output must chain to one",
    )
    p.add_argument(
        "--trust-dev-ca",
        action="store_true",
        help="also trust the development C2PA CA of $PROVMARK_HOME/c2pa (development only)",
    )


def _policy(args: argparse.Namespace, revocations: list[Revocation], source: str) -> TrustPolicy:
    from ..timestamp import load_tsa_trust

    witnesses = load_witnesses(args.witnesses) if args.witnesses else []
    if args.min is not None and not witnesses:
        raise ConfigError("--min needs --witnesses FILE")
    minimum = len(witnesses) if args.min is None else args.min
    tsa = load_tsa_trust(args.tsa_cert) if args.tsa_cert else None
    policy = TrustPolicy(witnesses=tuple(w.key for w in witnesses), min_witnesses=minimum, tsa=tsa)
    return policy.with_revocations(revocations, source)


def revocations_file(args: argparse.Namespace) -> list[Revocation]:
    if not args.revocations:
        return []
    if not Path(args.revocations).is_file():
        raise ConfigError(f"--revocations {args.revocations}: no such file")
    return list(RevocationList(args.revocations))


def policy_for(args: argparse.Namespace, pm: Any) -> TrustPolicy:
    """The policy ``provmark verify`` applies to a store: witnesses, timestamps, and any
    ``--revocations FILE`` (the store's own revocation list always applies)."""
    return _policy(args, revocations_file(args), f"revocation list {args.revocations}")


def bundle_policy(
    args: argparse.Namespace, pinned: list[Revocation], log_key: str | None
) -> TrustPolicy:
    """The policy of ``provmark verify --bundle``: witnesses, ``--revocations FILE`` and the
    revocations of a pinned key set (the bundle's own signed list applies anyway)."""
    policy = _policy(args, revocations_file(args), f"revocation list {args.revocations}")
    return policy.with_revocations(pinned, "pinned key set's revocation list")


# ---------------------------------------------------------------- witness


def _register_witness(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("witness", help="run a witness, or have witnesses cosign this log")
    ws = p.add_subparsers(dest="witness_command", metavar="ACTION", required=True)

    q = ws.add_parser("init", help="create a witness folder with a new Ed25519 key")
    q.add_argument("dir", help="the witness's folder (its key and state)")
    q.add_argument("--name", required=True, help="witness name, e.g. witness.example.com/w1")
    q.set_defaults(func=cmd_witness_init)

    q = ws.add_parser("add-log", help="trust a log: its note verifier key (origin+id+key)")
    q.add_argument("dir")
    q.add_argument("log_key", help="the log's key, as `provmark keys list` prints it")
    q.set_defaults(func=cmd_witness_add_log)

    q = ws.add_parser("vkey", help="print the witness's public key (for --witnesses files)")
    q.add_argument("dir")
    q.set_defaults(func=cmd_witness_vkey)

    q = ws.add_parser("status", help="latest cosigned checkpoint per log, refusals kept")
    q.add_argument("dir")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_witness_status)

    q = ws.add_parser("serve", help="serve C2SP tlog-witness add-checkpoint over HTTP")
    q.add_argument("dir")
    q.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1")
    q.add_argument("--port", type=int, default=7380, help="default 7380; 0 picks a free port")
    q.add_argument("--prefix", default="", help="URL path prefix, e.g. /witness")
    q.set_defaults(func=cmd_witness_serve)

    q = ws.add_parser("submit", help="send the latest checkpoint to the witnesses; keep cosigs")
    q.add_argument("--witnesses", required=True, metavar="FILE", help="'<vkey> <url>' lines")
    q.add_argument("--min", type=int, metavar="K", help="fail unless K cosigned (default all)")
    q.add_argument("--timeout", type=float, default=10.0)
    q.add_argument("--json", action="store_true")
    add_db(q)
    q.set_defaults(func=cmd_witness_submit)

    q = ws.add_parser("bundle", help="offline bundle proven against a witnessed checkpoint")
    q.add_argument("record_id")
    q.add_argument("--witnesses", required=True, metavar="FILE")
    q.add_argument("--min", type=int, metavar="K", help="default: all listed witnesses")
    q.add_argument("-o", "--output", metavar="PATH", help="default: <slug>.provmark.json")
    add_db(q)
    q.set_defaults(func=cmd_witness_bundle)


def cmd_witness_init(args: argparse.Namespace) -> int:
    with Witness.create(args.dir, args.name) as w:
        print(w.key.vkey())
    return 0


def cmd_witness_add_log(args: argparse.Namespace) -> int:
    with Witness(args.dir) as w:
        origin = w.add_log(args.log_key)
    print(f"witnessing log {origin}")
    return 0


def cmd_witness_vkey(args: argparse.Namespace) -> int:
    with Witness(args.dir) as w:
        print(w.key.vkey())
    return 0


def cmd_witness_status(args: argparse.Namespace) -> int:
    with Witness(args.dir) as w:
        rows = []
        for origin in w.logs:
            st = w.state(origin)
            rows.append(
                {
                    "origin": origin,
                    "size": st.size if st else 0,
                    "cosigned_at": st.cosigned_at if st else None,
                    "refusals": len(w.refusals(origin)),
                }
            )
        if args.json:
            print_json({"name": w.name, "vkey": w.key.vkey(), "logs": rows})
            return 0
        print(f"witness {w.name}\n  key {w.key.vkey()}")
    for r in rows:
        print(f"  {r['origin']}  size {r['size']}  refusals {r['refusals']}")
    return 0


def _stop(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def cmd_witness_serve(args: argparse.Namespace) -> int:
    with Witness(args.dir) as w:
        if not w.logs:
            raise ConfigError(f"witness {w.name} trusts no log yet: `provmark witness add-log`")
        server = WitnessServer(w, args.host, args.port, args.prefix)
        print(f"witness {w.name} listening on {server.url}", flush=True)
        print(w.key.vkey(), flush=True)
        signal.signal(signal.SIGTERM, _stop)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.close()
    return 0


def _minimum(args: argparse.Namespace, count: int) -> int:
    k = count if args.min is None else args.min
    if not 0 <= k <= count:
        raise ConfigError(f"--min {k}: between 0 and the {count} witnesses listed")
    return k


def cmd_witness_submit(args: argparse.Namespace) -> int:
    witnesses = load_witnesses(args.witnesses)
    k = _minimum(args, len(witnesses))
    with open_store_from(args) as pm, TrustArchive.for_log(pm.log) as archive:
        report = witness_checkpoint(pm.log, witnesses, archive, timeout=args.timeout)
    if args.json:
        print_json(
            {
                "size": report.size,
                "cosigned": [{"witness": c.name, "time": c.iso_time()} for c in report.cosigned],
                "refused": report.refused,
                "note": report.note,
            }
        )
    else:
        print(f"checkpoint of size {report.size}")
        for c in report.cosigned:
            print(f"  cosigned  {c.name}  at {c.iso_time()}")
        for name, reason in report.refused.items():
            print(f"  REFUSED   {name}  {reason}")
    if len(report.cosigned) < k:
        print(
            f"provmark: only {len(report.cosigned)} of the required {k} witnesses cosigned",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_witness_bundle(args: argparse.Namespace) -> int:
    from ..bundle import write_bundle

    witnesses = load_witnesses(args.witnesses)
    k = _minimum(args, len(witnesses))
    with open_store_from(args) as pm:
        bundle = witnessed_bundle(pm.log, args.record_id, [w.key for w in witnesses], k)
        slug = pm.get(args.record_id).slug
    path = args.output or f"{slug}.provmark.json"
    write_bundle(bundle, path)
    print(path)
    return 0


# ---------------------------------------------------------------- timestamp


def _register_timestamp(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("timestamp", help="RFC 3161 timestamps of checkpoints")
    ts = p.add_subparsers(dest="timestamp_command", metavar="ACTION", required=True)

    q = ts.add_parser("add", help="time-stamp the latest checkpoint at a TSA; keep the token")
    q.add_argument("--tsa", required=True, metavar="URL", help="the TSA's RFC 3161 HTTP URL")
    q.add_argument(
        "--tsa-cert",
        action="append",
        default=[],
        metavar="PEM",
        help="verify the token against this root CA before keeping it",
    )
    q.add_argument("--timeout", type=float, default=10.0)
    q.add_argument("--json", action="store_true")
    add_db(q)
    q.set_defaults(func=cmd_timestamp_add)

    q = ts.add_parser("verify", help="verify every stored token against a pinned TSA root")
    q.add_argument("--tsa-cert", action="append", required=True, metavar="PEM")
    q.add_argument("--json", action="store_true")
    add_db(q)
    q.set_defaults(func=cmd_timestamp_verify)


def cmd_timestamp_add(args: argparse.Namespace) -> int:
    from ..timestamp import load_tsa_trust, timestamp_checkpoint

    trust = load_tsa_trust(args.tsa_cert) if args.tsa_cert else None
    with open_store_from(args) as pm, TrustArchive.for_log(pm.log) as archive:
        stamp, info = timestamp_checkpoint(
            pm.log, args.tsa, archive, trust=trust, timeout=args.timeout
        )
    out = {
        "size": stamp.size,
        "gen_time": stamp.gen_time,
        "tsa": args.tsa,
        "verified": info is not None,
    }
    if args.json:
        print_json(out)
    else:
        how = f"verified, signed by {info.tsa}" if info else "not verified: pass --tsa-cert"
        print(f"checkpoint of size {stamp.size} time-stamped at {stamp.gen_time} ({how})")
    return 0


def cmd_timestamp_verify(args: argparse.Namespace) -> int:
    from ..timestamp import load_tsa_trust, verify_stored_timestamps

    trust = load_tsa_trust(args.tsa_cert)
    results: list[tuple[Any, Any]] = []
    with open_store_from(args) as pm, TrustArchive.for_log(pm.log) as archive:
        for stamp, result in verify_stored_timestamps(archive, trust, origin=pm.store.origin):
            stored = pm.store.checkpoint(stamp.size)
            body = stored.note.split("\n\n", 1)[0] + "\n" if stored else None
            if not isinstance(result, VerificationError) and body != stamp.body:
                result = VerificationError("timestamp", "token covers a checkpoint this log lacks")
            results.append((stamp, result))
    bad = [r for _, r in results if isinstance(r, VerificationError)]
    if args.json:
        print_json(
            [
                {
                    "size": s.size,
                    "ok": not isinstance(r, VerificationError),
                    **({"error": str(r)} if isinstance(r, VerificationError) else r.to_json()),
                }
                for s, r in results
            ]
        )
    else:
        for s, r in results:
            if isinstance(r, VerificationError):
                print(f"  FAIL  size {s.size}  {r}")
            else:
                print(f"  ok    size {s.size}  {r.gen_time}  {r.tsa}")
        print(f"{len(results) - len(bad)} of {len(results)} timestamps verified")
    return 1 if bad or not results else 0


# ---------------------------------------------------------------- revocation


def add_revoke_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``keys-revoke`` (also usable for a ``keys revoke`` sub-command)."""
    p.add_argument("key_id", nargs="?", help="the record key id (see `provmark keys list`)")
    p.add_argument("--since", help="compromised from: RFC 3339 time, now, or an age (2d, 6h)")
    p.add_argument("--reason", default="", help="why (shown in verification failures)")
    p.add_argument("--list", action="store_true", help="show the revocations instead")
    p.add_argument("--json", action="store_true")
    add_db(p)
    p.set_defaults(func=cmd_revoke)


def cmd_revoke(args: argparse.Namespace) -> int:
    with open_store_from(args) as pm:
        revocations = RevocationList.for_keystore(pm.keystore)
        if args.list:
            items = [r.to_json() for r in revocations]
            if args.json:
                print_json({"revocations": items})
            else:
                for r in items:
                    print(f"{r['key_id']}  since {r['since']}  {r['reason']}")
            return 0
        if not args.key_id or not args.since:
            raise ConfigError("give KEY_ID and --since TIME (or --list)")
        keys = {k.key_id: k for k in pm.public_keys()}
        key = keys.get(args.key_id)
        if key is None:
            raise ConfigError(f"KEY_ID {args.key_id!r}: no such key in this key set")
        if key.purpose != "records":
            raise ConfigError(
                f"KEY_ID {args.key_id}: a {key.purpose} key; only record keys are revoked here "
                "(a log key is replaced with `keys rotate` and re-pinned by verifiers)"
            )
        rev = revocations.revoke(args.key_id, parse_since(args.since), args.reason)
        rotated = None
        if pm.signer.key_id == args.key_id:
            rotated = pm.rotate_keys()
    if args.json:
        print_json({**rev.to_json(), "new_key": rotated.key_id if rotated else None})
    else:
        print(
            f"revoked {rev.key_id} since {rev.since}" + (f" ({rev.reason})" if rev.reason else "")
        )
        if rotated:
            print(f"it was the current record key: new key {rotated.key_id} ({rotated.alg})")
    return 0
