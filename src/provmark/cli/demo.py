"""provmark demo: capture a small assistant's generations end to end and verify them."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from ..bundle import load_bundle, verify_bundle
from ..capture.hashing import digest_output
from ..client import Provmark
from ..demo.story import ERASED_SUBJECT, build_demo
from .verdict import print_report, print_verified

__all__ = ["build_demo", "register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo", help="build a tiny local assistant, capture its generations and verify them"
    )
    p.add_argument(
        "--dir", default="provmark-demo", help="where to put the demo (default: ./provmark-demo)"
    )
    p.add_argument("-n", type=int, default=8, help="requests to answer, 3 records each (default 8)")
    p.add_argument("--fresh", action="store_true", help="delete the demo folder first")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    if args.fresh and folder.exists():
        shutil.rmtree(folder)
    db = f"--db {folder}/provmark.db --home {folder}/home"
    print(
        f"1. a tiny local assistant answers {args.n} requests in three captured steps"
        f" (retrieve -> draft -> summary) into {folder}/provmark.db;\n"
        "   one summary comes from a fallback model, one request fails, a cover image is"
        f" drawn,\n   the subject {ERASED_SUBJECT!r} is erased and a witness cosigns the log"
    )
    out = build_demo(folder, args.n)
    original, edited, bundle = Path(out["original"]), Path(out["edited"]), Path(out["bundle"])
    print(f"2. one summary is saved as {original}; an edited copy as {edited}\n")
    print(f"$ provmark verify {original} {db}")
    with Provmark.open(folder / "provmark.db", home=folder / "home") as pm:
        print_verified(pm.verify(original), str(original))
        steps = [pm.get(rid) for rid in out["lineage"]]
        print("  lineage  " + " -> ".join(f"{r.operation} {r.slug}" for r in steps))
        print(f"\n$ provmark verify {edited} {db}")
        report = pm.report(edited)  # the same block of checks as `provmark verify` prints
        print_report(report, str(edited))
        if report.verified:
            print("UNEXPECTED: the edited copy verified")
            return 1
    print(f"\n$ provmark verify {original} --bundle {bundle}   # offline: no database, no server")
    result = verify_bundle(load_bundle(bundle), content_sha256=digest_output(original).sha256)
    print_verified(result, str(original))
    print("\nTry next:")
    print(f"  provmark log {db} --limit 5")
    print(f"  provmark show {result.record.slug} {db}")
    print(f"  provmark log {db} --tag step=summary --json   # the fallback is in one of them")
    print(f"  provmark verify {original} {db} --witnesses {out['witnesses']} --min 1")
    if "cover" in out:
        print(f"  provmark verify {out['cover']} {db}   # the cover image")
    if "cover_marked" in out:
        print(f"  provmark disclose {out['cover_marked']} {db}   # its C2PA manifest and verdict")
    print(f"  provmark audit {db}")
    print(
        f"  provmark verify {edited} --fuzzy {db}"
        "   # the edited copy, found by its fingerprint (a lead, not a proof)"
    )
    return 0
