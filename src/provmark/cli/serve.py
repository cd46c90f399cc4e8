"""provmark serve: the HTTP API (see docs/server.md)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..server.settings import DEFAULT_MAX_BATCH_RECORDS, DEFAULT_MAX_BODY_BYTES, WebhookSettings

WEB_UI = "provmark.web:mount"  # the auditor web UI, composed with the API here


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "serve", help="run the HTTP API (ingest, query, verify, proofs, webhooks, metrics)"
    )
    p.add_argument(
        "--db",
        metavar="TARGET",
        help="SQLite file or postgresql:// URL "
        "(default: $PROVMARK_DB, $PROVMARK_DATABASE_URL, ./provmark.db)",
    )
    p.add_argument(
        "--home", metavar="DIR", help="keys and config (default: $PROVMARK_HOME or ~/.provmark)"
    )
    p.add_argument(
        "--state",
        metavar="TARGET",
        help="tokens/audit log/webhooks database "
        "(default: $PROVMARK_SERVER_STATE, the --db if PostgreSQL, else <home>/server.db)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument(
        "--queue",
        metavar="URL",
        help="publish accepted batches to this queue "
        "(nats://host:4222) for `provmark worker` instead of storing them here",
    )
    p.add_argument(
        "--no-auth", action="store_true", help="NO AUTHENTICATION: local demo only (loopback)"
    )
    p.add_argument(
        "--demo", action="store_true", help="serve a fresh SQLite store filled with demo records"
    )
    p.add_argument(
        "--demo-dir", metavar="DIR", help="where --demo puts its data (default: a new temp folder)"
    )
    p.add_argument(
        "--c2pa-trust",
        action="append",
        default=[],
        metavar="PEM",
        help="C2PA trust anchors: an uploaded file whose manifest is not bound to a recorded "
        "output verifies only when its signer chains to one",
    )
    p.add_argument(
        "--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES, help="larger bodies get 413"
    )
    p.add_argument(
        "--max-batch",
        type=int,
        default=DEFAULT_MAX_BATCH_RECORDS,
        help="records per POST (413 above)",
    )
    w = WebhookSettings()
    p.add_argument(
        "--webhook-attempts", type=int, default=w.max_attempts, help="deliveries give up after this"
    )
    p.add_argument(
        "--webhook-backoff",
        type=float,
        default=w.backoff_base,
        help="first retry delay, doubled each time",
    )
    p.add_argument(
        "--webhook-timeout", type=float, default=w.timeout, help="seconds to wait for a subscriber"
    )
    p.add_argument(
        "--webhook-poll",
        type=float,
        default=w.poll_interval,
        help="seconds between looks at the log",
    )
    p.add_argument(
        "--no-webhooks", action="store_true", help="do not deliver webhooks from this server"
    )
    p.add_argument("--batch-size", type=int, default=2048, help="records per store transaction")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes on this port (PostgreSQL: one log, more cores; metrics per process)",
    )
    p.add_argument("--access-log", action="store_true", help="log every request")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=cmd_serve)


def _demo(folder: Path) -> tuple[str, str]:
    from ..demo.story import build_demo

    if (folder / "provmark.db").exists():
        raise SystemExit(f"provmark: --demo wants a fresh folder; {folder}/provmark.db exists")
    sys.stderr.write(f"--demo: capturing demo records into {folder}/provmark.db\n")
    build_demo(folder)
    return str(folder / "provmark.db"), str(folder / "home")


def cmd_serve(args: argparse.Namespace) -> int:
    if not args.demo or args.demo_dir:
        return _serve(args, Path(args.demo_dir) if args.demo_dir else None)
    # --demo without --demo-dir: a temporary folder, removed when the server stops. uvicorn
    # re-raises the SIGTERM it caught once it has shut down; make that unwind, not kill.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    with tempfile.TemporaryDirectory(prefix="provmark-demo-") as folder:
        return _serve(args, Path(folder))


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _serve(args: argparse.Namespace, demo_folder: Path | None) -> int:
    from ..server.run import serve

    db, home = args.db, args.home
    if demo_folder is not None:
        db, home = _demo(demo_folder)
        if not args.no_auth:
            from ..server.auth import TokenStore
            from ..server.state import StateDB, resolve_state

            state = StateDB(resolve_state(args.state, db, home))
            try:
                tokens = TokenStore(state)
                auditor, _ = tokens.create("auditor", "demo auditor")
                developer, _ = tokens.create("developer", "demo developer")
            finally:
                state.close()
            url = f"http://{args.host}:{args.port}/"
            sys.stderr.write(
                f"--demo: open {url} and sign in with a token:\n"
                f"  auditor (sees everything):      {auditor}\n"
                f"  developer (sanitized view):     {developer}\n"
            )
    overrides: dict[str, Any] = {
        "c2pa_trust": _anchors_text(args.c2pa_trust),
        "max_body_bytes": args.max_body_bytes,
        "max_batch_records": args.max_batch,
        "webhooks": WebhookSettings(
            max_attempts=args.webhook_attempts,
            backoff_base=args.webhook_backoff,
            timeout=args.webhook_timeout,
            poll_interval=args.webhook_poll,
            enabled=not args.no_webhooks,
        ),
    }
    serve(
        db,
        home=home or os.environ.get("PROVMARK_HOME"),
        host=args.host,
        port=args.port,
        state=args.state,
        queue_url=args.queue,
        auth=not args.no_auth,
        settings_overrides=overrides,
        access_log=args.access_log,
        log_level=args.log_level,
        pm_options={"batch_size": args.batch_size},
        workers=args.workers,
        mounts=[WEB_UI],
    )
    return 0


def _anchors_text(paths: list[str]) -> str | None:
    from pathlib import Path

    from ..errors import ConfigError

    try:
        return "".join(Path(p).read_text() for p in paths) or None
    except OSError as exc:
        raise ConfigError(f"--c2pa-trust: {exc}") from None
