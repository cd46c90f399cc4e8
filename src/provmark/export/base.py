"""What every exporter is, the registry of formats, and record sources.

An exporter turns records into one standard format. Formats whose documents
must be whole (PROV) return ``bytes``; line formats (in-toto, OpenLineage)
return an iterator of lines so a large export streams. The registry is built
per call from the options given, so nothing is shared between callers.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol, runtime_checkable

from ..errors import ConfigError
from ..record import Record, is_record_id
from ..store.base import Query, Store, StoredRecord

RecordLike = Record | StoredRecord
"""A parsed record, or a stored one (which keeps the exact signed payload bytes)."""

Resolve = Callable[[str], Record | None]
"""Looks a record up by id (for parents outside the exported set)."""

FORMATS = ("prov-json", "prov-n", "prov-o", "prov-jsonld", "in-toto", "openlineage")


@runtime_checkable
class Exporter(Protocol):
    """Turns records into one standard format."""

    @property
    def name(self) -> str: ...

    @property
    def media_type(self) -> str: ...

    def export(self, records: Iterable[RecordLike]) -> bytes | Iterator[bytes]: ...


def with_payload(item: RecordLike) -> tuple[Record, bytes]:
    """The record and the bytes its signature covers.

    A :class:`StoredRecord` keeps them verbatim; a bare :class:`Record` is
    re-encoded (RFC 8785), which equals the stored bytes only when the record
    was made with every default field present.
    """
    if isinstance(item, StoredRecord):
        return item.record(), item.payload
    return item, item.payload()


def as_record(item: RecordLike) -> Record:
    return item.record() if isinstance(item, StoredRecord) else item


def json_line(obj: object) -> bytes:
    return (
        json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode() + b"\n"
    )


# ---------------------------------------------------------------- record sources


def iter_query(store: Store, query: Query, *, limit: int | None = None) -> Iterator[StoredRecord]:
    """Every stored record matching ``query``, page after page (``limit`` caps the total)."""
    cursor = query.cursor
    sent = 0
    page_size = min(1000, limit) if limit else 1000
    while True:
        page = store.find(
            Query(
                output=query.output,
                model=query.model,
                actor=query.actor,
                operation=query.operation,
                status=query.status,
                since=query.since,
                until=query.until,
                tags=query.tags,
                limit=page_size,
                cursor=cursor,
                order=query.order,
            )
        )
        for stored in page.records:
            yield stored
            sent += 1
            if limit is not None and sent >= limit:
                return
        if not page.next_cursor:
            return
        cursor = page.next_cursor


def lineage(store: Store, record_id: str, *, max_records: int = 100_000) -> list[StoredRecord]:
    """A record and all its ancestors (following ``parents``), parents before children.

    Parents that are not record ids (artifact hashes) or not in the store end
    the walk on that branch; they still appear in the exports as references.
    """
    from ..errors import NotFoundError

    first = store.get(record_id)
    if first is None:
        raise NotFoundError(f"no record {record_id!r}")
    found: dict[str, StoredRecord] = {first.record_id: first}
    todo = deque([first])
    while todo:
        current = todo.popleft()
        for parent in current.record().parents:
            if parent in found or not is_record_id(parent):
                continue
            stored = store.get(parent)
            if stored is None:
                continue
            if len(found) >= max_records:
                raise ConfigError(f"lineage of {record_id} has more than {max_records} records")
            found[stored.record_id] = stored
            todo.append(stored)
    return sorted(found.values(), key=lambda s: s.index)
