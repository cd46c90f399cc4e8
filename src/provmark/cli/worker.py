"""provmark worker: store record batches from a durable queue (NATS JetStream or Kafka)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from typing import Any

from ..errors import ConfigError
from .common import add_db, open_store_from


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "worker",
        help="store record batches from a queue into the database (runs until SIGTERM)",
        description="Consume batches published by `provmark serve --queue` and store them. "
        "Run as many workers as you like: delivery is at-least-once and storing is "
        "idempotent by record id, so each record is stored exactly once.",
    )
    p.add_argument(
        "--queue",
        metavar="URL",
        default=os.environ.get("PROVMARK_QUEUE"),
        help="nats://host:port or kafka://host:port (default: $PROVMARK_QUEUE)",
    )
    p.add_argument("--stream", default="PROVMARK", help="JetStream stream (default PROVMARK)")
    p.add_argument("--subject", default="provmark.records", help="NATS subject / Kafka topic")
    p.add_argument("--durable", default="provmark-worker", help="consumer / group name")
    p.add_argument("--ack-wait", type=float, default=30.0, metavar="SECONDS",
                   help="redeliver a batch a dead worker did not ack after this long")  # fmt: skip
    p.add_argument("--batch-size", type=int, default=2000, help="records per store transaction")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    add_db(p)
    p.set_defaults(func=cmd_worker)


def queue_options(args: argparse.Namespace) -> dict[str, Any]:
    url = args.queue or ""
    if url.startswith("kafka://"):
        return {"topic": args.subject, "group": args.durable}
    return {
        "stream": args.stream,
        "subject": args.subject,
        "durable": args.durable,
        "ack_wait": args.ack_wait,
    }


def cmd_worker(args: argparse.Namespace) -> int:
    from ..queue import open_queue
    from ..queue.worker import WorkerStats, run_worker, stop_on_signals
    from ..store.targets import resolve_target

    if not args.queue:
        raise ConfigError("no queue: pass --queue nats://host:port or set PROVMARK_QUEUE")
    if resolve_target(args.db).startswith(("http://", "https://")):
        raise ConfigError(
            "the worker writes to a database: give --db a postgresql:// URL or a file"
        )
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, not {args.batch_size}")
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    log = logging.getLogger("provmark.worker")
    stop = threading.Event()
    stop_on_signals(stop)
    stats = WorkerStats()
    queue = open_queue(args.queue, **queue_options(args))
    try:
        with open_store_from(args, batch_size=args.batch_size, flush_interval=0.01) as pm:
            log.info("worker: %s -> %s", queue.url, pm.store)
            run_worker(queue, pm, stop=stop, stats=stats)
    finally:
        queue.close()
        print(
            f"worker stopped: {stats.batches} batches, {stats.records} records stored, "
            f"{stats.rejected} rejected",
            file=sys.stderr,
        )
    return 0
