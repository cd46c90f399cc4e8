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
    from ..record import is_sha256
    from ..store.base import time_filter

    tags = parse_tags(args.tag)
    output = args.output
    if output and not is_sha256(output):
        from ..capture.hashing import digest_output

        output = digest_output(Path(output)).sha256
    return Query(
        output=output,
        model=args.model,
        actor=args.actor,
        operation=args.operation,
        status=args.status,
        since=time_filter("since", args.since),
        until=time_filter("until", args.until),
        tags=tags,
        limit=1000,
        order="desc" if args.desc else "asc",
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
