"""Removing record rows from the hot table and putting them back.

The :class:`~provmark.store.base.Store` protocol has no way to remove or re-insert
a record row (the log is append-only by design), so governance opens its own
connection on the SQLite file, or runs its own transaction on the PostgreSQL
store's pool. Only ``records`` and ``tags`` rows are touched:
the Merkle tree's nodes and the checkpoints are never changed, so every leaf
stays in the log and proofs over archived records keep working.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, StoreError
from ..record import secondary_outputs, slug_for
from ..store.base import StoredRecord

if TYPE_CHECKING:
    from ..client import Provmark


class SQLiteHotTable:
    """Hot record rows of one SQLite store file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._db = sqlite3.connect(path, isolation_level=None, timeout=30)
        except sqlite3.Error as exc:
            raise StoreError(f"{path}: {exc}") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SQLiteHotTable:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def remove(self, records: Sequence[StoredRecord]) -> int:
        """Delete these rows (matched by index, id and exact bytes) in one transaction."""
        db = self._db
        removed = 0
        db.execute("BEGIN IMMEDIATE")
        try:
            for r in records:
                cur = db.execute(
                    "DELETE FROM records WHERE idx = ? AND record_id = ? AND payload = ?",
                    (r.index, r.record_id, r.payload),
                )
                if cur.rowcount:
                    db.execute("DELETE FROM tags WHERE idx = ?", (r.index,))
                    db.execute("DELETE FROM outputs WHERE idx = ?", (r.index,))
                    removed += cur.rowcount
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return removed

    def insert(self, records: Sequence[StoredRecord]) -> int:
        """Put rows back at their log index; rows already there are left alone."""
        db = self._db
        inserted = 0
        db.execute("BEGIN IMMEDIATE")
        try:
            for r in records:
                row, tags, outputs = _columns(r)
                cur = db.execute(
                    "INSERT OR IGNORE INTO records VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", row
                )
                if cur.rowcount:
                    db.executemany(
                        "INSERT OR IGNORE INTO tags VALUES (?,?,?)",
                        [(k, v, r.index) for k, v in tags.items()],
                    )
                    db.executemany(
                        "INSERT OR IGNORE INTO outputs VALUES (?,?)",
                        [(sha, r.index) for sha in outputs],
                    )
                    inserted += 1
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return inserted


def _columns(r: StoredRecord) -> tuple[tuple[Any, ...], dict[str, str], list[str]]:
    """The index columns of a row, its tags and its secondary outputs, taken from its
    payload as the writer does."""
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


class PostgresHotTable:
    """Hot record rows of a PostgreSQL store, through its connection pool."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def close(self) -> None:
        pass

    def __enter__(self) -> PostgresHotTable:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def remove(self, records: Sequence[StoredRecord]) -> int:
        """Delete these rows (matched by index, id and exact bytes) in one transaction."""

        def run(conn: Any) -> int:
            removed = 0
            for r in records:
                cur = conn.execute(
                    "DELETE FROM records WHERE idx = %s AND record_id = %s AND payload = %s",
                    (r.index, r.record_id, r.payload),
                )
                if cur.rowcount:
                    conn.execute("DELETE FROM tags WHERE idx = %s", (r.index,))
                    conn.execute("DELETE FROM outputs WHERE idx = %s", (r.index,))
                    removed += cur.rowcount
            return removed

        return int(self.store.run_in_transaction(run))

    def insert(self, records: Sequence[StoredRecord]) -> int:
        """Put rows back at their log index; rows already there are left alone."""

        def run(conn: Any) -> int:
            inserted = 0
            for r in records:
                row, tags, outputs = _columns(r)
                cur = conn.execute(
                    "INSERT INTO records VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s::timestamptz,%s,%s)"
                    " ON CONFLICT DO NOTHING",
                    row,
                )
                if cur.rowcount:
                    for k, v in tags.items():
                        conn.execute(
                            "INSERT INTO tags VALUES (%s,%s,%s) ON CONFLICT DO NOTHING",
                            (k, v, r.index),
                        )
                    for sha in outputs:
                        conn.execute(
                            "INSERT INTO outputs VALUES (%s,%s) ON CONFLICT DO NOTHING",
                            (sha, r.index),
                        )
                    inserted += 1
            return inserted

        return int(self.store.run_in_transaction(run))


def hot_table(pm: Provmark) -> SQLiteHotTable | PostgresHotTable:
    """The hot table of ``pm``'s store, or a clear error where the backend has none."""
    from ..store.sqlite import SQLiteStore

    store = pm.store
    if isinstance(store, SQLiteStore):
        return SQLiteHotTable(store.path)
    if hasattr(store, "run_in_transaction"):
        return PostgresHotTable(store)
    raise ConfigError(
        f"{store!r}: removing archived rows from the hot table (and restoring them) needs "
        "the SQLite or PostgreSQL store",
        field="keep_hot",
        hint="keep_hot writes and verifies an archive without removing rows",
    )


def supports_hot_removal(pm: Provmark) -> bool:
    from ..store.sqlite import SQLiteStore

    return isinstance(pm.store, SQLiteStore) or hasattr(pm.store, "run_in_transaction")
