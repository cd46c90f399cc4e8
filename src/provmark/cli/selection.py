"""Which records a command works on: ``--record``, ``--lineage`` or the query filters
(shared by ``provmark export`` in every format, OTLP included)."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path

from ..errors import NotFoundError
from ..store.base import Query, Store, StoredRecord
from .common import parse_tags


def query_of(args: argparse.Namespace) -> Query:
    from ..capture.hashing import digest_output
    from ..store.base import query_of

    return query_of(
        None,
        {
            "output": args.output,
            "model": args.model,
            "actor": args.actor,
            "operation": args.operation,
            "status": args.status,
            "since": args.since,
            "until": args.until,
            "tags": parse_tags(args.tag),
            "limit": 1000,
            "order": "desc" if args.desc else "asc",
        },
        lambda o: digest_output(Path(o)).sha256,
    )


def selection(args: argparse.Namespace, store: Store) -> tuple[Iterable[StoredRecord], int | None]:
    """The records to export and, when cheap to know, how many."""
    from ..export import iter_query, lineage

    if args.lineage:
        chain = lineage(store, args.lineage)
        return chain, len(chain)
    if args.record:
        found = []
        for rid in args.record:
            stored = store.get(rid)
            if stored is None:
                raise NotFoundError(f"no record {rid!r}")
            found.append(stored)
        return found, len(found)
    query = query_of(args)
    return iter_query(store, query, limit=args.limit), None
