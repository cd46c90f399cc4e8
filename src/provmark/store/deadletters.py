"""Dead letters: records the store refused, kept with the reason beside the log.

When the store refuses the data of a record (a value over one of its own limits,
say), the writer retries a bounded number of times, then sets the record aside
here and goes on with the next ones (``_internal.writer.Writer``). A dead letter is not in
the log and not signed; ``record`` is the unsigned record as the writer would
have signed it (already redacted), as JSON text, so an operator can fix it and
send it again. The table is the same in SQLite and PostgreSQL: a feature table of
the store (``features.FeatureTables``), created on the first dead letter, so that
opening a store never writes to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ..record import now_utc
from .features import FeatureTables, Step

TABLE = """CREATE TABLE IF NOT EXISTS dead_letters (
    record_id TEXT PRIMARY KEY,
    at TEXT NOT NULL,
    reason TEXT NOT NULL,
    record TEXT NOT NULL,
    times INTEGER NOT NULL
)"""
UPSERT = (
    "INSERT INTO dead_letters (record_id, at, reason, record, times) VALUES (?, ?, ?, ?, 1)"
    " ON CONFLICT (record_id) DO UPDATE SET at = excluded.at, reason = excluded.reason,"
    " record = excluded.record, times = dead_letters.times + 1"
)
SELECT = "SELECT record_id, at, reason, record, times FROM dead_letters ORDER BY at DESC LIMIT ?"
COUNT = "SELECT count(*) FROM dead_letters"
STEPS = (Step("dead_letters", TABLE),)

MAX_REASON_CHARS = 1000


@dataclass(frozen=True)
class DeadLetter:
    record_id: str
    at: str  # RFC 3339 UTC, the last time it was refused
    reason: str
    record: str  # the unsigned record, JSON text
    times: int  # how often it was refused

    def to_json(self) -> dict[str, Any]:
        return {
            "record_id": self.record_id,
            "at": self.at,
            "reason": self.reason,
            "times": self.times,
        }


@runtime_checkable
class DeadLetterStore(Protocol):
    """A store that keeps dead letters (both SQL stores do)."""

    def add_dead_letter(self, record_id: str, reason: str, record_json: str) -> None: ...

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]: ...

    def dead_letter_count(self) -> int: ...


def rows_to_letters(rows: Sequence[Sequence[Any]]) -> list[DeadLetter]:
    return [DeadLetter(str(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4])) for r in rows]


def add(store: FeatureTables, record_id: str, reason: str, record_json: str) -> None:
    """Keep (or count once more) a record ``store`` refused."""
    store.ensure_feature("dead_letters", STEPS)
    with store.transaction() as conn:
        args = (record_id, now_utc(), reason[:MAX_REASON_CHARS], record_json)
        conn.execute(store.dialect.sql(UPSERT), args)


def read(store: FeatureTables, limit: int = 100) -> list[DeadLetter]:
    """The newest dead letters first (none while the table was never made)."""
    with store.connect() as conn:
        if not _made(conn, store):
            return []
        return rows_to_letters(conn.execute(store.dialect.sql(SELECT), (limit,)).fetchall())


def table_made(store: FeatureTables) -> bool:
    """Whether the dead-letter table exists (opening or reading a store never makes it)."""
    with store.connect() as conn:
        return _made(conn, store)


def count(store: FeatureTables) -> int:
    with store.connect() as conn:
        return int(conn.execute(COUNT).fetchone()[0]) if _made(conn, store) else 0


def _made(conn: Any, store: FeatureTables) -> bool:
    # not ensure_feature: reading never creates (and a store of an earlier provmark has
    # the table without any bookkeeping)
    sql = store.dialect.sql(store.dialect.table_exists)
    return conn.execute(sql, ("dead_letters",)).fetchone() is not None
