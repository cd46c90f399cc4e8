"""export, mark, c2pa-read, c2pa dev-cert: open-standard exports and C2PA manifests."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from ..errors import ConfigError, NotFoundError, RecordError
from ..record import Record
from ..store.base import Store, StoredRecord
from . import otlp
from .common import Progress, add_db, open_from, open_store_from, print_json
from .selection import selection


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "export",
        help="export records as W3C PROV, in-toto (DSSE) or OpenLineage",
        description="Formats: prov-json, prov-n, prov-o (Turtle), prov-jsonld, "
        "in-toto (JSON lines of DSSE envelopes), openlineage (JSON lines of RunEvents), "
        "otlp (OpenTelemetry spans or log events sent to --endpoint).",
    )
    p.add_argument("--format", "-f", required=True, metavar="FORMAT", help="see above")
    p.add_argument("--record", action="append", default=[], metavar="ID", help="these records only")
    p.add_argument("--lineage", metavar="ID", help="this record and all its ancestors")
    p.add_argument("--model")
    p.add_argument("--actor", help="user id")
    p.add_argument("--operation")
    p.add_argument("--status", choices=["ok", "error"])
    p.add_argument("--output", metavar="SHA256|FILE", help="output hash or a file to hash")
    p.add_argument("--since", help="RFC 3339 time or an age: 30m, 6h, 2d, 1w")
    p.add_argument("--until", help="RFC 3339 time or an age")
    p.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--limit", type=int, help="at most this many records (default: all)")
    p.add_argument("--desc", action="store_true", help="newest first (default: oldest first)")
    p.add_argument("-o", dest="out", metavar="FILE", help="write here (default: standard output)")
    p.add_argument("--namespace", default="provmark", help="OpenLineage job namespace")
    p.add_argument("--send", metavar="URL", help="openlineage: POST the events to this endpoint")
    p.add_argument("--api-key", help="openlineage --send: bearer token (or $OPENLINEAGE_API_KEY)")
    p.add_argument(
        "--skip-failed", action="store_true", help="in-toto: skip records without output"
    )
    p.add_argument(
        "--progress", action="store_true", help="show the progress bar even if not a TTY"
    )
    otlp.add_arguments(p)
    add_db(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("mark", help="embed a signed C2PA manifest for a record in an image")
    p.add_argument("file", metavar="IMAGE", help="the generated image (or text: sidecar manifest)")
    p.add_argument("-o", dest="out", required=True, metavar="OUT", help="where to write")
    p.add_argument(
        "--record", metavar="ID", help="record id or slug (default: the record of IMAGE's hash)"
    )
    p.add_argument("--cert", metavar="PEM", help="certificate chain, leaf first")
    p.add_argument("--key", metavar="PEM", help="private key of the leaf certificate")
    p.add_argument("--provider", help="SB 942 provider name (default: the model's provider)")
    p.add_argument("--sidecar", action="store_true", help="write OUT.c2pa instead of embedding")
    p.add_argument(
        "--no-check-output", action="store_true", help="do not require the hashes to match"
    )
    add_db(p)
    p.set_defaults(func=cmd_mark)

    p = sub.add_parser("c2pa-read", help="read and validate a C2PA manifest (embedded or sidecar)")
    p.add_argument("file", metavar="FILE")
    p.add_argument(
        "--sidecar", metavar="PATH", help="manifest file (default: FILE's .c2pa beside it)"
    )
    p.add_argument("--trust", metavar="PEM", help="CA certificates to trust (Valid -> Trusted)")
    p.add_argument("--check-log", action="store_true", help="also verify the record in the store")
    p.add_argument("--json", action="store_true")
    add_db(p)
    p.set_defaults(func=cmd_c2pa_read)

    p = sub.add_parser("c2pa", help="C2PA signing certificates")
    cs = p.add_subparsers(dest="c2pa_command", metavar="ACTION", required=True)
    q = cs.add_parser("dev-cert", help="make a local CA + end-entity certificate for development")
    q.add_argument("--dir", metavar="DIR", help="default: $PROVMARK_HOME/c2pa")
    q.add_argument("--home", metavar="DIR", help="keys and config (default: $PROVMARK_HOME)")
    q.add_argument("--alg", choices=["ES256", "Ed25519"], default="ES256")
    q.add_argument("--days", type=int, default=365)
    q.add_argument("--organization", default="provmark development")
    q.add_argument("--force", action="store_true", help="replace an existing certificate")
    q.set_defaults(func=cmd_dev_cert)


# ---------------------------------------------------------------- export


def _counted(
    items: Iterable[StoredRecord], progress: Progress, total: int
) -> Iterator[StoredRecord]:
    for done, item in enumerate(items, 1):
        yield item
        if done % 100 == 0 or done == total:
            progress(done, total)


def cmd_export(args: argparse.Namespace) -> int:
    from ..export import FORMATS, get_exporter
    from ..export.openlineage import OpenLineageExporter, send

    if args.format == "otlp":
        with open_from(args) as pm:
            return otlp.cmd_export_otlp(args, pm)
    if args.format not in FORMATS:
        raise ConfigError(
            f"unknown export format {args.format!r}; choose one of {', '.join(FORMATS)}"
        )
    if args.send and args.format != "openlineage":
        raise ConfigError("--send works with --format openlineage only")
    with open_store_from(args) as pm:
        store = pm.store

        def resolve(record_id: str) -> Record | None:
            stored = store.get(record_id)
            return stored.record() if stored is not None else None

        exporter = get_exporter(
            args.format,
            signer=pm.signer if args.format == "in-toto" else None,
            resolve=resolve,
            namespace=args.namespace,
        )
        if args.format == "in-toto" and args.skip_failed:
            from ..export.intoto import InTotoExporter

            exporter = InTotoExporter(pm.signer, skip_without_output=True)
        items, total = selection(args, store)
        progress = Progress("exporting", force=args.progress)
        if progress.enabled and total is None:
            items = list(items)  # know the total for the bar; PROV holds it all anyway
            total = len(items)
        if progress.enabled and total:
            items = _counted(items, progress, total)
        if args.send:
            assert isinstance(exporter, OpenLineageExporter)
            key = args.api_key or os.environ.get("OPENLINEAGE_API_KEY")
            sent = send(exporter.events(items), args.send, api_key=key)
            print(f"sent {sent} OpenLineage events to {args.send}")
            return 0
        try:
            with _sink(args.out) as out:
                result = exporter.export(items)
                if isinstance(result, bytes):
                    out.write(result)
                else:
                    for chunk in result:
                        out.write(chunk)
        except RecordError as exc:
            if args.format == "in-toto" and exc.field == "output.sha256":
                raise RecordError(
                    exc.field, f"{exc.reason} (--skip-failed leaves failed generations out)"
                ) from None
            raise
    if args.out:
        print(args.out, file=sys.stderr)
    return 0


@contextlib.contextmanager
def _sink(path: str | None) -> Iterator[IO[bytes]]:
    """Standard output, or a file that appears only once complete."""
    if not path:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------- C2PA


def _cert_paths(args: argparse.Namespace) -> tuple[Path, Path]:
    from ..export.c2pa_certs import CHAIN_FILE, KEY_FILE, default_dir

    if args.cert and args.key:
        return Path(args.cert), Path(args.key)
    if args.cert or args.key:
        raise ConfigError("give both --cert and --key")
    folder = default_dir(args.home)
    chain, key = folder / CHAIN_FILE, folder / KEY_FILE
    if not chain.exists() or not key.exists():
        raise ConfigError(
            "no C2PA signing certificate: give --cert and --key, or make a development one "
            "with `provmark c2pa dev-cert`"
        )
    return chain, key


def cmd_mark(args: argparse.Namespace) -> int:
    from ..disclosure.marking import mark_output

    chain, key = _cert_paths(args)
    with open_store_from(args) as pm:
        pm.flush()
        stored = _record_to_mark(pm.store, args.record, Path(args.file))
        done = mark_output(
            pm,
            args.file,
            args.out,
            stored,
            chain,
            key,
            provider=args.provider,
            sidecar=True if args.sidecar else None,
            check_output=not args.no_check_output,
        )
    how = f"sidecar {done.sidecar}" if done.sidecar else "embedded"
    parent = ", earlier manifest kept as ingredient" if done.parent_manifest else ""
    print(f"{done.path}  C2PA manifest {how} ({done.media_type}{parent})")
    return 0


def _record_to_mark(store: Store, record: str | None, asset: Path) -> StoredRecord:
    """The record named, else the newest record whose output is the asset's bytes."""
    if record:
        stored = store.get(record)
        if stored is None:
            raise NotFoundError(f"no record {record!r}")
        return stored
    from ..capture.hashing import hash_file

    sha, _ = hash_file(asset)
    found = store.by_output(sha)
    if not found:
        raise NotFoundError(
            f"no record states {asset} as its output (sha256 {sha}); give --record ID"
        )
    return max(found, key=lambda s: s.index)


def _report_lines(report: Any) -> list[str]:
    where = "embedded" if report.embedded else f"sidecar {report.sidecar}"
    lines = [f"{report.state.upper():<9} {where}"]
    signer = report.manifest.get("signature_info", {})
    who = (
        f"{signer.get('common_name', '?')} ({signer.get('issuer', '?')}, {signer.get('alg', '?')})"
    )
    lines.append(f"  signer     {who}")
    for action in report.actions:
        source = action.get("digitalSourceType", "").rsplit("/", 1)[-1]
        agent = action.get("softwareAgent") or {}
        name = agent.get("name", "") if isinstance(agent, dict) else str(agent)
        lines.append(f"  action     {action.get('action')} {source} {name}".rstrip())
    if report.disclosure:
        d = report.disclosure
        lines.append(
            f"  disclosure {d.get('provider')} / {d.get('system_name')} {d.get('system_version')}"
            f" at {d.get('created_at')} id {d.get('unique_id')}"
        )
    if report.record:
        r = report.record
        lines.append(
            f"  record     {r.get('slug')} ({r.get('record_id')}) log index {r.get('log_index')}"
        )
        lines.append(f"  hash       {r.get('record_hash')}")
    for ing in report.ingredients:
        lines.append(f"  ingredient {ing.get('title')} ({ing.get('relationship')})")
    for f in report.failures:
        if f["code"] == "signingCredential.untrusted" and report.ok:
            lines.append("  note       signer not among the trust anchors (give --trust CA.pem)")
        else:
            lines.append(f"  FAILED     {f['code']}: {f['explanation']}")
    return lines


def cmd_c2pa_read(args: argparse.Namespace) -> int:
    from ..errors import VerificationError
    from ..export.c2pa import read

    report = read(args.file, sidecar=args.sidecar, trust_anchors=args.trust)
    verdict = None
    if args.check_log:  # the one Verifier: bound to a recorded output, or a trusted signer
        from ..verification.store import load_anchors, verify_marked

        with open_store_from(args) as pm:
            verdict, _ = verify_marked(
                pm.log,
                args.file,
                sidecar=args.sidecar,
                trust_anchors=load_anchors(args.trust) if args.trust else None,
            )
    if args.json:
        out = report.to_json()
        if verdict is not None:
            out["log"] = verdict.to_json()
        print_json(out)
    else:
        print("\n".join(_report_lines(report)))
        if verdict is not None:
            from .verdict import print_report

            print_report(verdict, f"{args.file} against the log")
    if not report.ok or (args.trust and not report.trusted):
        codes = ", ".join(f["code"] for f in report.failures) or report.state
        raise VerificationError("c2pa", f"{args.file}: manifest is {report.state} ({codes})")
    if verdict is not None:
        verdict.raise_for_failure()
    return 0


def cmd_dev_cert(args: argparse.Namespace) -> int:
    from ..export.c2pa_certs import default_dir, make_dev_cert, write_dev_cert

    folder = Path(args.dir) if args.dir else default_dir(args.home)
    cert = make_dev_cert(alg=args.alg, days=args.days, organization=args.organization)
    paths = write_dev_cert(cert, folder, force=args.force)
    print(f"certificate chain  {paths['chain']}")
    print(f"private key        {paths['key']}")
    print(f"CA (trust anchor)  {paths['ca']}")
    print("development only: readers trust it only with --trust " + str(paths["ca"]))
    return 0
