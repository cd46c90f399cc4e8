"""disclose: the EU AI Act / SB 942 fields of an output, or their coverage over a period."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import ConfigError
from .common import add_db, open_store_from, print_json


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "disclose",
        help="the AI-disclosure fields of an output (EU AI Act Art. 50, SB 942), or --report",
        description="For FILE (text or media, marked or not) or a record ID: provider, system "
        "name and version, creation time, unique id and the AI-generated statement, each with "
        "where it comes from and whether it is signed, and the verification verdict "
        "(exit 0 verified, 1 not). With --report: coverage over a period.",
    )
    p.add_argument("target", nargs="?", metavar="FILE|ID")
    p.add_argument("--json", action="store_true")
    p.add_argument("--trust", metavar="PEM", help="C2PA CA certificates to trust")
    p.add_argument("--report", action="store_true", help="coverage over a period instead")
    p.add_argument("--since", default="30d", help="--report: RFC 3339 time or an age (30d)")
    p.add_argument("--until", help="--report: RFC 3339 time or an age (default: now)")
    add_db(p)
    p.set_defaults(func=cmd_disclose)


_SERVER = "for a server use POST /v1/disclose and GET /v1/disclosure/report"


def cmd_disclose(args: argparse.Namespace) -> int:
    from ..disclosure import coverage, disclose

    if args.report:
        if args.target:
            raise ConfigError("--report takes no FILE|ID")
        with open_store_from(args, server_hint=_SERVER) as pm:
            report = coverage(pm, since=args.since, until=args.until).to_json()
        if args.json:
            print_json(report)
        else:
            print("\n".join(report_lines(report)))
        return 0
    if not args.target:
        raise ConfigError("give FILE or a record ID (or --report)")
    with open_store_from(args, server_hint=_SERVER) as pm:
        result = disclose(pm, args.target, trust_anchors=args.trust)
    if args.json:
        print_json(result.to_json())
    else:
        print("\n".join(disclosure_lines(result.to_json())))
    return 0 if result.verdict.status == "verified" else 1


def disclosure_lines(d: dict[str, Any]) -> list[str]:
    v = d["verdict"]
    head = {"verified": "VERIFIED", "not_verified": "NOT VERIFIED", "no_record": "NO RECORD"}
    lines = [f"{head[v['status']]:<13} {d['subject']}"]
    if d["content_sha256"]:
        lines.append(f"  content     sha256 {d['content_sha256']} ({d['media_type'] or '?'})")
    lines.append(f"  marking     {d['marking']}")
    if d["record_id"]:
        lines.append(f"  record      {d['slug']} ({d['record_id']})")
    for f in d["fields"]:
        if not f["present"]:
            lines.append(f"  {f['name']:<15} MISSING   ({f['law']})")
            continue
        value = f["value"]
        if f["name"] == "ai_generated":
            value = f"yes: {str(value).rsplit('/', 1)[-1]}"
        lines.append(f"  {f['name']:<15} {value}")
        for s in f["sources"]:
            mark = "signed" if s["signed"] else "NOT signed"
            by = f" by {s['signer']}" if s.get("signer") else ""
            lines.append(f"      from {s['where']} ({mark}{by})")
        if not f["sources_agree"]:
            lines.append("      WARNING: the sources disagree")
    for c in v["checks"]:
        lines.append(f"  check       {c['check']}: {c['result']} ({c['detail']})")
    if v["c2pa_state"]:
        lines.append(f"  c2pa        {v['c2pa_state']}")
    if v["reason"] and v["status"] != "verified":
        lines.append(f"  reason      {v['failed_check'] or ''}: {v['reason']}".rstrip())
    lines.append("  complete    " + ("yes: every SB 942 field, signed" if d["complete"] else "no"))
    return lines


def report_lines(r: dict[str, Any]) -> list[str]:
    def pct(v: float | None) -> str:
        return "-" if v is None else f"{v}%"

    lines = [
        f"disclosure coverage {r['since']} .. {r['until']}",
        f"  records                    {r['records']}",
        f"  outputs captured           {r['outputs_captured']}",
        f"  with manifest or sidecar   {r['with_manifest_or_sidecar']} "
        f"({pct(r['percent_marked'])}; embedded {r['with_manifest_embedded']}, "
        f"sidecar {r['with_sidecar']})",
        f"  with all SB 942 fields     {r['with_all_sb942_fields']} "
        f"({pct(r['percent_sb942_complete'])})",
        f"  failed generations         {r['failures']['generations']}",
        f"  failed markings            {r['failures']['markings']}",
    ]
    for name, n in r["missing_fields"].items():
        lines.append(f"  missing {name:<18} {n}")
    lines.append("  day         captured  marked  complete  failures")
    for b in r["days"]:
        if b["captured"] or b["failures"]:
            lines.append(
                f"  {b['day']}  {b['captured']:>8}  {b['marked']:>6}  {b['complete']:>8}"
                f"  {b['failures']:>8}"
            )
    if r["truncated"]:
        lines.append("  (truncated: more records than the report reads)")
    return lines
