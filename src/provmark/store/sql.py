"""What the SQL stores share, written once: the reads of the log, hot rows and dead
letters, over a :class:`~provmark.store.features.Dialect`.

:class:`~provmark.store.sqlite.SQLiteStore` and
:class:`~provmark.store.postgres.PostgresStore` differ in how they append (a batched
``INSERT`` under ``BEGIN IMMEDIATE``; ``COPY`` under an advisory lock), in a few reads
where PostgreSQL has a faster form (``= ANY(array)``, ``unnest``), and in the dialect.
A subclass gives ``_query`` (rows of one statement, errors as :class:`StoreError`)
and the :class:`~provmark.store.features.FeatureTables` half (``dialect``,
``connect()``, ``transaction()``...), listed here so that the class is one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from ..crypto.keys import PublicKey
from . import deadletters
from .base import (
    INDEX_COLUMNS,
    IndexRow,
    Page,
    Query,
    StoredCheckpoint,
    StoredRecord,
    index_rows_from,
    iter_in_pages,
    output_filter,
    page_of,
    row_columns,
    where_clause,
)
from .features import Dialect, Step

COLUMNS = "idx, record_id, payload, signature"
_INDEX_COLUMNS = ", ".join(INDEX_COLUMNS)
_IN_RANGE = "idx >= ? AND idx < ? ORDER BY idx"
_RECORDS_IN_RANGE = f"records WHERE {_IN_RANGE}"
_CHECKPOINT_COLUMNS = "size, root, note, created_at"


def stored_record(row: Sequence[Any]) -> StoredRecord:
    """A ``records`` row (:data:`COLUMNS`) as a :class:`StoredRecord`; a damaged row (a
    TEXT or NULL payload, a signature that is not JSON) still reads: audit says more."""
    raw = row[2]
    payload = raw.encode() if isinstance(raw, str) else b"" if raw is None else bytes(raw)
    try:
        signature = json.loads(row[3])
    except (TypeError, ValueError):
        signature = {}
    return StoredRecord(index=row[0], record_id=str(row[1]), payload=payload, signature=signature)


def stored_checkpoints(rows: Sequence[Sequence[Any]]) -> list[StoredCheckpoint]:
    return [StoredCheckpoint(size=r[0], root=bytes(r[1]), note=r[2], created_at=r[3]) for r in rows]


class SQLStore:
    """The shared half of the SQL stores (see the module docstring)."""

    @property
    def dialect(self) -> Dialect:
        raise NotImplementedError

    @property
    def where(self) -> str:
        raise NotImplementedError

    def connect(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def transaction(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def ensure_feature(self, feature: str, steps: Sequence[Step]) -> int:
        raise NotImplementedError

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _ask(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """``_query`` of a statement written with ``?`` placeholders."""
        return self._query(self.dialect.sql(sql), args)

    def _record_id_ok(self, value: str) -> bool:
        """Whether ``value`` can be a stored record id (else it matches nothing)."""
        return True

    # ------------------------------------------------------------ records
    def get(self, record_id_or_slug: str) -> StoredRecord | None:
        if record_id_or_slug.startswith("pm-"):
            where = "slug = ?"
        elif self._record_id_ok(record_id_or_slug):
            where = f"record_id = ?{self.dialect.uuid_cast}"
        else:
            return None
        rows = self._ask(
            f"SELECT {COLUMNS} FROM records WHERE {where} ORDER BY idx LIMIT 1",
            (record_id_or_slug,),
        )
        return stored_record(rows[0]) if rows else None

    def by_output(self, sha256: str) -> list[StoredRecord]:
        rows = self._ask(
            f"SELECT {COLUMNS} FROM records WHERE {output_filter()} ORDER BY idx", (sha256, sha256)
        )
        return [stored_record(r) for r in rows]

    def find(self, query: Query) -> Page[StoredRecord]:
        clause, args = where_clause(query, time_cast=self.dialect.time_cast)
        order = query.order.upper()
        sql = f"SELECT {COLUMNS} FROM records{clause} ORDER BY idx {order} LIMIT ?"
        rows = self._ask(sql, [*args, query.limit + 1])
        return page_of([stored_record(r) for r in rows], query.limit)

    def iter_records(self, start: int = 0, end: int | None = None) -> Iterator[StoredRecord]:
        def fetch(cursor: int, stop: int) -> list[StoredRecord]:
            sql = f"SELECT {COLUMNS} FROM records WHERE {_IN_RANGE} LIMIT 2000"
            return [stored_record(r) for r in self._ask(sql, (cursor, stop))]

        return iter_in_pages(fetch, start, end)

    def tree_size(self) -> int:
        rows = self._query("SELECT max(idx) FROM nodes WHERE level = 0")
        return 0 if rows[0][0] is None else int(rows[0][0]) + 1

    def count(self) -> int:
        return int(self._query("SELECT count(*) FROM records")[0][0])

    def index_rows(self, start: int, end: int) -> list[IndexRow]:
        span = (start, end)
        return index_rows_from(
            self._ask(f"SELECT idx, record_id, {_INDEX_COLUMNS} FROM {_RECORDS_IN_RANGE}", span),
            self._ask(f"SELECT idx, key, value FROM tags WHERE {_IN_RANGE}", span),
            self._ask(f"SELECT idx, sha256 FROM outputs WHERE {_IN_RANGE}", span),
        )

    # ------------------------------------------------------------ checkpoints, keys
    def latest_checkpoint(self) -> StoredCheckpoint | None:
        rows = self.checkpoints(1)
        return rows[0] if rows else None

    def checkpoint(self, size: int) -> StoredCheckpoint | None:
        sql = f"SELECT {_CHECKPOINT_COLUMNS} FROM checkpoints WHERE size = ?"
        rows = stored_checkpoints(self._ask(sql, (size,)))
        return rows[0] if rows else None

    def checkpoints(self, limit: int = 100) -> list[StoredCheckpoint]:
        sql = f"SELECT {_CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY size DESC LIMIT ?"
        return stored_checkpoints(self._ask(sql, (limit,)))

    def public_keys(self) -> list[PublicKey]:
        return [PublicKey.from_json(json.loads(r[0])) for r in self._query("SELECT body FROM keys")]

    # ------------------------------------------------------------ hot rows (HotRows)
    def remove_rows(self, records: Sequence[StoredRecord]) -> int:
        """Delete these rows (matched by index, id and exact bytes) in one transaction;
        the tree's nodes and the checkpoints stay (see ``features.HotRows``)."""
        sql = self.dialect.sql
        removed = 0
        with self.transaction() as conn:
            for r in records:
                cur = conn.execute(
                    sql(
                        "DELETE FROM records WHERE idx = ? AND record_id = ?"
                        f"{self.dialect.uuid_cast} AND payload = ?"
                    ),
                    (r.index, r.record_id, r.payload),
                )
                if cur.rowcount:
                    conn.execute(sql("DELETE FROM tags WHERE idx = ?"), (r.index,))
                    conn.execute(sql("DELETE FROM outputs WHERE idx = ?"), (r.index,))
                    removed += cur.rowcount
        return removed

    def restore_rows(self, records: Sequence[StoredRecord]) -> int:
        """Put rows back at their log index; rows already there are left alone."""
        d = self.dialect
        row_sql = d.sql(
            f"INSERT INTO records VALUES (?,?{d.uuid_cast},?,?,?,?,?,?,?,?{d.time_cast},?,?)"
            " ON CONFLICT DO NOTHING"
        )
        inserted = 0
        with self.transaction() as conn:
            for r in records:
                row, tags, outputs = row_columns(r)
                if conn.execute(row_sql, row).rowcount:
                    for k, v in tags.items():
                        conn.execute(
                            d.sql("INSERT INTO tags VALUES (?,?,?) ON CONFLICT DO NOTHING"),
                            (k, v, r.index),
                        )
                    for sha in outputs:
                        conn.execute(
                            d.sql("INSERT INTO outputs VALUES (?,?) ON CONFLICT DO NOTHING"),
                            (sha, r.index),
                        )
                    inserted += 1
        return inserted

    # ------------------------------------------------------------ dead letters
    def add_dead_letter(self, record_id: str, reason: str, record_json: str) -> None:
        """Keep a record the store refused, with the reason (see ``deadletters``)."""
        deadletters.add(self, record_id, reason, record_json)

    def dead_letters(self, limit: int = 100) -> list[deadletters.DeadLetter]:
        return deadletters.read(self, limit)

    def dead_letter_count(self) -> int:
        return deadletters.count(self)
