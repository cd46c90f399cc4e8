"""The storage contract every backend meets (SQLite here, PostgreSQL in the server)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Protocol, TypedDict, TypeVar, runtime_checkable

from ..crypto.keys import PublicKey
from ..errors import ConfigError, StoreError
from ..record import (
    Record,
    format_time,
    is_sha256,
    parse_time,
    record_from_payload,
    secondary_outputs,
    signature_json,
    slug_for,
)

STORE_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Signed:
    """Exact payload bytes plus the signature over them."""

    record_id: str
    payload: bytes
    signature: dict[str, str]  # {"alg", "key_id", "sig"}

    def signature_json(self) -> bytes:
        return signature_json(self.signature)

    def log_entry(self) -> bytes:
        return b'{"record":' + self.payload + b',"signature":' + self.signature_json() + b"}"

    def leaf_hash(self) -> bytes:
        return hashlib.sha256(b"\x00" + self.log_entry()).digest()


@dataclass(frozen=True)
class Entry(Signed):
    """A signed record ready to be appended, with the columns the store indexes."""

    # Index columns, taken from the payload by the writer.
    slug: str
    output_sha256: str | None
    model: str
    model_version: str | None
    operation: str
    status: str
    actor: str | None
    generated_at: str
    tags: dict[str, str] = field(default_factory=dict)
    # sha256 of the outputs besides the primary one (v2 records with several outputs)
    outputs: tuple[str, ...] = ()


def index_columns(draft: dict[str, Any]) -> dict[str, Any]:
    """The columns a store indexes for a record, taken from its (unsigned) payload dict:
    what the writer stores and what ``audit`` checks the stored columns against."""
    model = draft["model"]
    model = getattr(model, "value", model)  # a canonical Fragment from the writer
    output = draft.get("output") or {}
    actor = draft.get("actor") or {}
    return {
        "slug": slug_for(draft["record_id"]),
        "output_sha256": output.get("sha256"),
        "model": model["name"],
        "model_version": model.get("version"),
        "operation": draft.get("operation", "text_completion"),
        "status": draft.get("status", "ok"),
        "actor": actor.get("user_id"),
        "generated_at": draft["generated_at"],
        "tags": dict(draft.get("tags") or {}),
        "outputs": tuple(secondary_outputs(draft)) if "outputs" in draft else (),
    }


@dataclass(frozen=True)
class IndexRow:
    """A stored record's index columns (``records`` columns, its ``tags`` and ``outputs``
    rows), as read back for ``audit``; ``generated_at`` is the store's own value."""

    index: int
    record_id: str
    columns: dict[str, Any]
    tags: dict[str, str]
    outputs: tuple[str, ...]


INDEX_COLUMNS = (
    "slug", "output_sha256", "model", "model_version", "operation", "status", "actor",
    "generated_at",
)  # fmt: skip


def index_rows_from(
    records: Sequence[tuple[Any, ...]],
    tags: Sequence[tuple[Any, ...]],
    outputs: Sequence[tuple[Any, ...]],
) -> list[IndexRow]:
    """:class:`IndexRow` objects from the rows of ``records`` (idx, record_id, then
    :data:`INDEX_COLUMNS`), ``tags`` (idx, key, value) and ``outputs`` (idx, sha256)."""
    tag_map: dict[int, dict[str, str]] = {}
    for idx, key, value in tags:
        tag_map.setdefault(idx, {})[key] = value
    output_map: dict[int, list[str]] = {}
    for idx, sha in outputs:
        output_map.setdefault(idx, []).append(sha)
    return [
        IndexRow(
            index=row[0],
            record_id=str(row[1]),
            columns=dict(zip(INDEX_COLUMNS, row[2:], strict=True)),
            tags=tag_map.get(row[0], {}),
            outputs=tuple(output_map.get(row[0], ())),
        )
        for row in records
    ]


@dataclass(frozen=True)
class StoredRecord(Signed):
    """A record as stored: exact signed bytes and its position in the log."""

    index: int = -1

    def record(self) -> Record:
        try:
            data = json.loads(self.payload)
        except ValueError as exc:  # NULL or damaged bytes: `provmark audit` says more
            raise StoreError(
                f"record {self.record_id} (log index {self.index}) is damaged: its stored "
                f"payload is {'empty' if not self.payload else 'not JSON'} ({exc})"
            ) from None
        return record_from_payload(
            data,
            signature=self.signature,
            log={"index": self.index, "leaf_hash": base64.b64encode(self.leaf_hash()).decode()},
        )


def row_columns(r: StoredRecord) -> tuple[tuple[Any, ...], dict[str, str], list[str]]:
    """The ``records`` row of a stored record (all its columns, in table order), its tags
    and its secondary outputs, taken from its payload as the writer does (to put back
    a row that was archived)."""
    data = json.loads(r.payload)
    model = data.get("model") or {}
    output = data.get("output") or {}
    actor = data.get("actor") or {}
    row = (
        r.index,
        r.record_id,
        slug_for(r.record_id),
        output.get("sha256"),
        model.get("name", ""),
        model.get("version"),
        data.get("operation", "text_completion"),
        data.get("status", "ok"),
        actor.get("user_id"),
        data.get("generated_at", ""),
        r.payload,
        r.signature_json().decode(),
    )
    return row, dict(data.get("tags") or {}), secondary_outputs(data)


@dataclass(frozen=True)
class StoredCheckpoint:
    size: int
    root: bytes
    note: str  # the C2SP signed note text
    created_at: str


@dataclass(frozen=True)
class Query:
    output: str | None = None
    model: str | None = None
    actor: str | None = None
    operation: str | None = None
    status: str | None = None
    since: str | None = None
    until: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    limit: int = 50
    cursor: str | None = None
    order: str = "desc"

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= 10_000:
            raise ConfigError(f"must be between 1 and 10000, not {self.limit}", field="limit")
        if self.order not in ("asc", "desc"):
            raise ConfigError(f"must be 'asc' or 'desc', not {self.order!r}", field="order")


T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of results; pass ``next_cursor`` back as ``cursor`` for the next."""

    records: list[T]
    next_cursor: str | None


def output_filter(mark: str = "?") -> str:
    """``idx IN (...)`` of the records with this output: the primary one
    (``records.output_sha256``) or any other of a v2 record (``outputs``); two arguments."""
    return (
        f"idx IN (SELECT idx FROM records WHERE output_sha256 = {mark}"
        f" UNION ALL SELECT idx FROM outputs WHERE sha256 = {mark})"
    )


def where_clause(query: Query, mark: str = "?", time_cast: str = "") -> tuple[str, list[Any]]:
    """The ``WHERE`` clause and arguments of a query, for the SQL stores.

    ``mark`` is the driver's placeholder; ``time_cast`` is appended to time
    placeholders (``::timestamptz`` on PostgreSQL).
    """
    where: list[str] = []
    args: list[Any] = []
    if query.output is not None:  # the primary output, or any other of a v2 record
        where.append(output_filter(mark))
        args.extend((query.output, query.output))
    columns = ("model", "actor", "operation", "status")
    values = (query.model, query.actor, query.operation, query.status)
    for column, value in zip(columns, values, strict=True):
        if value is not None:
            where.append(f"{column} = {mark}")
            args.append(value)
    if query.since:
        where.append(f"generated_at >= {mark}{time_cast}")
        args.append(query.since)
    if query.until:
        where.append(f"generated_at < {mark}{time_cast}")
        args.append(query.until)
    for key, value in query.tags.items():
        where.append(f"idx IN (SELECT idx FROM tags WHERE key = {mark} AND value = {mark})")
        args.extend((key, value))
    if query.cursor:
        where.append(f"idx < {mark}" if query.order == "desc" else f"idx > {mark}")
        args.append(decode_cursor(query.cursor))
    return (" WHERE " + " AND ".join(where) if where else ""), args


def iter_in_pages(
    fetch: Callable[[int, int], Sequence[StoredRecord]], start: int = 0, end: int | None = None
) -> Iterator[StoredRecord]:
    """Records with ``start <= index < end`` in log order; ``fetch(cursor, stop)`` returns
    the next rows (at most a page) from ``cursor``."""
    stop = end if end is not None else 2**62
    cursor = start
    while True:
        rows = fetch(cursor, stop)
        if not rows:
            return
        yield from rows
        cursor = rows[-1].index + 1


def page_of(records: list[StoredRecord], limit: int) -> Page[StoredRecord]:
    """A page from ``limit + 1`` rows: the extra row only tells that there are more."""
    more = len(records) > limit
    kept = records[:limit]
    return Page(kept, encode_cursor(kept[-1].index) if more and kept else None)


def encode_cursor(index: int) -> str:
    return base64.urlsafe_b64encode(f"i:{index}".encode()).decode().rstrip("=")


class Filters(TypedDict, total=False):
    """The filters of ``find`` (every one optional; ``None`` is the same as not given).

    ``output`` content (text, bytes, a path) or its SHA-256; ``model``, ``actor``,
    ``operation``, ``status``; ``since``/``until`` RFC 3339 or an age such as ``2d``,
    ``90m``; ``tags`` that must all match; ``limit`` 1..10000 (default 50); ``cursor``
    from the previous page; ``order`` ``desc`` (default, newest first) or ``asc``.
    """

    output: str | bytes | os.PathLike[str] | None
    model: str | None
    actor: str | None
    operation: str | None
    status: str | None
    since: str | None
    until: str | None
    tags: Mapping[str, str] | None
    limit: int
    cursor: str | None
    order: str


def query_of(
    query: Query | None, filters: Filters, digest: Callable[[Any], str] | None = None
) -> Query:
    """The :class:`Query` that ``find(query, **filters)`` runs: a whole ``query`` or one
    built from ``filters``, never both. ``digest`` hashes an ``output`` given as content
    (one already a SHA-256 is kept)."""
    if query is not None:
        defaults: dict[str, Any] = {"limit": 50, "order": "desc"}
        mixed = [k for k, v in filters.items() if v is not None and v != defaults.get(k)]
        if mixed:
            raise ConfigError(
                f"give either a Query or filters, not both (also given: {', '.join(mixed)})",
                field="query",
            )
        return query
    output, sha = filters.get("output"), None
    if isinstance(output, str) and is_sha256(output):
        sha = output
    elif output is not None:
        if digest is None:
            raise ConfigError("give the output's SHA-256", field="output")
        sha = digest(output)
    limit, order = filters.get("limit"), filters.get("order")
    return Query(
        output=sha,
        model=filters.get("model"),
        actor=filters.get("actor"),
        operation=filters.get("operation"),
        status=filters.get("status"),
        since=time_filter("since", filters.get("since")),
        until=time_filter("until", filters.get("until")),
        tags=dict(filters.get("tags") or {}),
        limit=50 if limit is None else limit,
        cursor=filters.get("cursor"),
        order="desc" if order is None else order,
    )


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith("i:"):
            raise ValueError
        return int(raw[2:])
    except ValueError:
        raise ConfigError(
            f"{cursor!r} is not a cursor this store gave out", field="cursor"
        ) from None


SealFn = Callable[[int, bytes], str]
"""Signs a checkpoint: (tree size, root hash) -> signed note text."""


@runtime_checkable
class Store(Protocol):
    """Durable storage of records, the Merkle tree's nodes and checkpoints."""

    origin: str

    def append(self, entries: Sequence[Entry], seal: SealFn) -> StoredCheckpoint:
        """Append a batch atomically: records, tree nodes and a signed checkpoint.

        Records whose ``record_id`` is already stored are skipped (idempotent).
        """
        ...

    def get(self, record_id_or_slug: str) -> StoredRecord | None: ...

    def by_output(self, sha256: str) -> list[StoredRecord]: ...

    def find(self, query: Query) -> Page[StoredRecord]: ...

    def has(self, record_ids: Sequence[str]) -> set[str]: ...

    def get_nodes(self, ids: Sequence[tuple[int, int]]) -> list[bytes]: ...

    def tree_size(self) -> int: ...

    def latest_checkpoint(self) -> StoredCheckpoint | None: ...

    def checkpoint(self, size: int) -> StoredCheckpoint | None: ...

    def checkpoints(self, limit: int = 100) -> list[StoredCheckpoint]: ...

    def iter_records(self, start: int = 0, end: int | None = None) -> Iterator[StoredRecord]: ...

    def count(self) -> int: ...

    def index_rows(self, start: int, end: int) -> list[IndexRow]:
        """The index columns of the records with ``start <= index < end`` (for audit)."""
        ...

    def public_keys(self) -> list[PublicKey]: ...

    def put_public_keys(self, keys: Sequence[PublicKey]) -> None: ...

    def stats(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


_MAX_AGE_SECONDS = 1000 * 366 * 86400
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def time_filter(name: str, value: str | None) -> str | None:
    """A ``since``/``until`` filter as RFC 3339 UTC (what :class:`Query` compares): an
    RFC 3339 time, or an age such as ``2d``, ``90m`` (``s m h d w``) before now."""
    if value is None:
        return None
    value = value.strip()
    if value[:-1].isdigit() and value[-1:] in _UNITS:
        seconds = int(value[:-1]) * _UNITS[value[-1]]
        if seconds > _MAX_AGE_SECONDS:  # before any record, and past what stores can compare
            raise ConfigError(
                f"{value!r} reaches back more than 1000 years",
                field=name,
                hint="give a smaller age or an RFC 3339 time",
            )
        return format_time(datetime.now(UTC) - timedelta(seconds=seconds))
    try:
        dt = parse_time(value)
    except ValueError:
        raise ConfigError(
            f"{value!r} is neither RFC 3339 nor an age like 2d/6h/30m", field=name
        ) from None
    return format_time(dt)
