"""``provmark verify --fuzzy`` and ``provmark fingerprint ...`` (soft binding).

``verify --fuzzy FILE`` exits 0 only when the content is proven (identical to a
recorded output, or named by a valid C2PA manifest); a *derived* match is a
lead, printed with its record, and exits 1 like every other unproven answer.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import ConfigError, NotFoundError
from .common import add_db, open_from, open_store_from, print_json, read_content

EXIT_OK, EXIT_FAILED = 0, 1


def _softbind() -> Any:
    try:
        from .. import softbind
    except ImportError as exc:
        raise ConfigError(
            f"soft binding needs numpy: pip install 'provmark[softbind]' ({exc})"
        ) from None
    return softbind


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "fingerprint", help="soft-binding fingerprints: add, show, remove, stats, prune, clear"
    )
    fsub = p.add_subparsers(dest="fingerprint_command", metavar="ACTION", required=True)

    a = fsub.add_parser("add", help="fingerprint content that is the output of a stored record")
    a.add_argument("file", nargs="?", help="the output file, or - for standard input")
    a.add_argument("--text", help="the output text instead of a file")
    a.add_argument("--record", metavar="ID", help="the record it is the output of (checked)")
    a.add_argument("--media-type", metavar="TYPE", help="e.g. text/markdown, image/png")
    a.add_argument("--json", action="store_true")
    add_db(a)
    a.set_defaults(func=cmd_add)

    s = fsub.add_parser("show", help="the fingerprints stored for one record")
    s.add_argument("record_id", help="record id or slug")
    s.add_argument("--json", action="store_true")
    add_db(s)
    s.set_defaults(func=cmd_show)

    r = fsub.add_parser("remove", help="delete one record's fingerprints (the record stays)")
    r.add_argument("record_id", help="record id or slug")
    add_db(r)
    r.set_defaults(func=cmd_remove)

    st = fsub.add_parser("stats", help="how many fingerprints, their size and capture cost")
    st.add_argument("--json", action="store_true")
    add_db(st)
    st.set_defaults(func=cmd_stats)

    pr = fsub.add_parser("prune", help="delete fingerprints whose record is not in the store")
    add_db(pr)
    pr.set_defaults(func=cmd_prune)

    c = fsub.add_parser("clear", help="delete every fingerprint (after changing the key)")
    c.add_argument("--yes", action="store_true", help="really delete them all")
    add_db(c)
    c.set_defaults(func=cmd_clear)


# ---------------------------------------------------------------- verify --fuzzy


def verify_fuzzy(args: argparse.Namespace, content: Any, label: str) -> int:
    """The ``--fuzzy`` branch of ``provmark verify``."""
    for option in ("bundle", "archive", "record", "trusted_checkpoint"):
        if getattr(args, option, None):
            raise ConfigError(f"--fuzzy does not combine with --{option.replace('_', '-')}")
    sb = _softbind()
    from .verdict import c2pa_anchors, keyset_of, print_report

    anchors = c2pa_anchors(args, keyset_of(args))
    with open_store_from(args) as pm:
        report = pm.report(content, c2pa_trust=anchors or None)  # exact, or a bound manifest
        failed = report.failed
        if report.verified or (failed is not None and failed.name != "output_hash"):
            if args.json:
                status = {"status": "identical", "proven": True} if report.verified else {}
                print_json({"content": label, **status, **report.to_json()})
            else:
                print_report(report, label)
            return EXIT_OK if report.verified else EXIT_FAILED
        result = sb.fuzzy_verify(pm, content)
    if args.json:
        print_json({"content": label, **result.to_json()})
    else:
        _print_fuzzy(result, label)
    return EXIT_OK if result.proven else EXIT_FAILED


def _print_fuzzy(result: Any, label: str) -> None:
    if result.status == "identical":
        from .verdict import print_verified

        print_verified(result.exact, label)
        return
    if result.status != "derived":
        word = "TOO SHORT" if result.status == "too_short" else "NO MATCH"
        print(f"{word}  {label}: {result.detail}")
        return
    print(f"DERIVED  {label}  (fuzzy match: a lead, not a proof)")
    for n, m in enumerate(result.matches):
        lead = "  record  " if n == 0 else "  also    "
        print(f"{lead}{m.slug}  ({m.record_id})")
        if m.verified is not None:
            r = m.verified.record
            model = " ".join(x for x in (r.model.name, r.model.version) if x)
            print(f"    model       {model}")
            print(f"    made        {r.generated_at}  ({r.operation})")
            print(f"    record      signed and logged (log index {m.verified.index})")
        else:
            print(f"    record      FAILED {m.record_problem}")
        cover = f"  coverage {m.coverage:.0%} of this content" if result.kind == "text" else ""
        print(f"    similarity  {m.similarity:.2f}{cover}  [{m.method}]")
        for part in m.parts[: 8 if n == 0 else 2]:
            print(f"    matches     {part.detail}")
        if len(m.parts) > (8 if n == 0 else 2):
            print(f"    ...         {len(m.parts) - (8 if n == 0 else 2)} more parts")


# ---------------------------------------------------------------- fingerprint ...


def cmd_add(args: argparse.Namespace) -> int:
    sb = _softbind()
    content, label = read_content(args)
    with open_from(args) as pm:
        verified = pm.verify(content, record_id=args.record)  # only proven outputs
        fp = sb.Fingerprinter.for_provmark(pm)
        try:
            done = fp.add(verified.record_id, content, args.media_type)
        finally:
            fp.close()
    if args.json:
        print_json(
            {
                "content": label,
                "record_id": done.record_id,
                "kind": done.kind,
                "stored": done.stored,
                "detail": done.detail,
                "cost_ms": done.cost_ms,
            }
        )
    elif done.stored:
        print(
            f"fingerprinted  {label}  -> {verified.record.slug}: {done.detail} "
            f"({done.cost_ms:.1f} ms)"
        )
    else:
        print(f"not fingerprinted  {label}: {done.detail}")
    return EXIT_OK if done.stored else EXIT_FAILED


def _store(pm: Any) -> Any:
    _softbind()
    from ..softbind.fingerprinter import fingerprint_store

    return fingerprint_store(pm)


def _record_id(pm: Any, ref: str) -> str:
    stored = pm.store.get(ref)
    if stored is None:
        raise NotFoundError(f"no record {ref!r}")
    return str(stored.record_id)


def cmd_show(args: argparse.Namespace) -> int:
    with open_from(args) as pm:
        rid = _record_id(pm, args.record_id)
        store = _store(pm)
        try:
            items = store.items_of(rid)
        finally:
            store.close()
    if args.json:
        print_json({"record_id": rid, "fingerprints": items})
        return EXIT_OK
    if not items:
        print(f"no fingerprints for {rid}")
        return EXIT_FAILED
    for it in items:
        if it["kind"] == "image":
            size = f"{it['width']}x{it['height']}, {it['parts']} pixel hash"
        elif it.get("scheme") == 1:
            size = f"{it['size']} words, scheme 1 (word shingles), {it['parts']} part hashes"
        else:
            size = f"{it['size']} words, {it.get('shingles', 0)} shingles, {it['parts']} anchors"
        print(
            f"{it['kind']:<6} {it.get('media_type') or '-':<24} {size}, "
            f"computed in {it['cost_us'] / 1000:.2f} ms"
        )
    return EXIT_OK


def cmd_remove(args: argparse.Namespace) -> int:
    with open_from(args) as pm:
        rid = _record_id(pm, args.record_id)
        store = _store(pm)
        try:
            n = store.remove(rid)
        finally:
            store.close()
    print(f"removed {n} fingerprint(s) of {rid}")
    return EXIT_OK if n else EXIT_FAILED


def cmd_stats(args: argparse.Namespace) -> int:
    with open_from(args) as pm:
        store = _store(pm)
        try:
            stats = store.stats()
        finally:
            store.close()
    if args.json:
        print_json(stats)
        return EXIT_OK
    print(f"parameters  {stats['params']}")
    print(f"key id      {stats.get('key_id') or '(none yet)'}")
    for kind, s in stats["kinds"].items():
        print(
            f"{kind:<11} {s['items']:,} outputs, capture cost p50 {s['cost_p50_ms']:.2f} ms, "
            f"p99 {s['cost_p99_ms']:.2f} ms"
        )
    rows = ", ".join(f"{t.removeprefix('softbind_')} {n:,}" for t, n in stats["rows"].items())
    print(f"rows        {rows}")
    if stats.get("bytes") is not None:
        print(f"size        {stats['bytes'] / 1e6:.1f} MB")
    return EXIT_OK


def cmd_prune(args: argparse.Namespace) -> int:
    with open_store_from(args) as pm:
        store = _store(pm)
        try:
            ids = list(store.record_ids())
            present: set[str] = set()
            for i in range(0, len(ids), 500):
                present |= pm.store.has(ids[i : i + 500])
            gone = [r for r in ids if r not in present]
            for rid in gone:
                store.remove(rid)
        finally:
            store.close()
    print(f"pruned fingerprints of {len(gone)} record(s) not in the store")
    return EXIT_OK


def cmd_clear(args: argparse.Namespace) -> int:
    if not args.yes:
        raise ConfigError("clear deletes every fingerprint; add --yes to do it")
    with open_from(args) as pm:
        store = _store(pm)
        try:
            n = store.clear()
        finally:
            store.close()
    print(f"cleared {n} fingerprint(s); new captures and 'fingerprint add' start afresh")
    return EXIT_OK
