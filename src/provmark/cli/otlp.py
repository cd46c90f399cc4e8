"""``provmark export --format otlp``: records to an OpenTelemetry collector (OTLP/HTTP).

Without ``--cursor`` the records the filters select are sent once. With ``--cursor FILE``
the command sends what the log gained since the index in FILE and moves it on (a cron
job, or ``--follow`` to keep forwarding every ``--interval`` seconds): a collector that is
down delays records, never loses them.
"""

from __future__ import annotations

import argparse
import sys
import time

from ..errors import ConfigError, ProvmarkError


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("otlp (OpenTelemetry)")
    g.add_argument(
        "--endpoint",
        metavar="URL",
        help="OTLP/HTTP endpoint, e.g. http://collector:4318 "
        "(default: OTEL_EXPORTER_OTLP_ENDPOINT)",
    )
    g.add_argument("--signal", choices=["spans", "logs"], default="spans", help="default: spans")
    g.add_argument(
        "--header", action="append", default=[], metavar="KEY=VALUE", help="e.g. an API key header"
    )
    g.add_argument("--service-name", default="provmark", help="resource service.name")
    g.add_argument("--cursor", metavar="FILE", help="forward what is new since FILE's log index")
    g.add_argument("--follow", action="store_true", help="with --cursor: keep forwarding")
    g.add_argument("--interval", type=float, default=5.0, help="--follow: seconds between passes")


def _headers(items: list[str]) -> dict[str, str]:
    headers = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--header {item!r}: give KEY=VALUE")
        headers[key.strip()] = value.strip()
    return headers


def cmd_export_otlp(args: argparse.Namespace, pm: object) -> int:
    from ..integrations.otel_export import Forwarder, RecordExporter, store_resolver
    from .selection import selection

    if args.follow and not args.cursor:
        raise ConfigError("--follow needs --cursor FILE (where forwarding resumes)")
    store = getattr(pm, "store", None)
    if store is None:
        raise ConfigError("export reads a local store (SQLite or PostgreSQL), not a server")
    exporter = RecordExporter(
        args.endpoint,
        signal=args.signal,
        headers=_headers(args.header),
        service_name=args.service_name,
        resolve=store_resolver(store),
    )
    what = f"records as OTLP {args.signal} to {exporter.endpoint}"
    try:
        if not args.cursor:
            items, _ = selection(args, store)
            print(f"sent {exporter.export(items)} {what}")
            return 0
        forwarder = Forwarder(store, exporter, cursor=args.cursor)
        print(f"sent {forwarder.run_once()} {what} (next log index {forwarder.position})")
        while args.follow:
            time.sleep(args.interval)
            try:
                sent = forwarder.run_once()
            except ProvmarkError as exc:
                print(f"provmark: will retry: {exc}", file=sys.stderr)
                continue
            if sent:
                print(f"sent {sent} {what} (next log index {forwarder.position})", flush=True)
        return 0
    finally:
        exporter.shutdown()
