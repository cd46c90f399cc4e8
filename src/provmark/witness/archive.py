"""The log side's record of outside evidence: cosigned checkpoints and timestamp tokens.

The store keeps each checkpoint as the log signed it; this SQLite file keeps, per
tree size, the same note with the witnesses' cosignatures merged in, the size each
witness last cosigned (the ``old`` size of the next request), and RFC 3161
responses over checkpoint bodies. Everything in it is public and self-verifying:
losing it loses evidence, altering it cannot forge any.

Default place: beside a SQLite store (``provmark.db`` -> ``provmark.trust.db``),
else ``$PROVMARK_HOME/trust/<origin digest>.db``.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..crypto.keystore import home_of
from ..log.note import parse_note

if TYPE_CHECKING:
    from ..log.service import Log

__all__ = ["ArchivedCheckpoint", "StoredTimestamp", "TrustArchive", "archive_path"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS checkpoints (
    size INTEGER PRIMARY KEY,
    note TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS witness_sizes (
    witness TEXT PRIMARY KEY,
    size INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS timestamps (
    id INTEGER PRIMARY KEY,
    size INTEGER NOT NULL,
    body TEXT NOT NULL,
    tsa TEXT NOT NULL,
    response BLOB NOT NULL,
    gen_time TEXT NOT NULL,
    UNIQUE (size, tsa)
);
"""


@dataclass(frozen=True)
class ArchivedCheckpoint:
    size: int
    note: str  # log signature plus every cosignature collected so far


@dataclass(frozen=True)
class StoredTimestamp:
    size: int
    body: str  # the checkpoint body the token's message imprint covers
    tsa: str  # URL it came from (informational)
    response: bytes  # DER TimeStampResp
    gen_time: str  # as the TSA stated it (trust it only after verification)


def archive_path(log: Log) -> Path:
    """Where the log's evidence lives by default."""
    if log.store_file is not None:
        return log.store_file.beside("trust")
    home = home_of(log.keystore)
    digest = hashlib.sha256(log.origin.encode()).hexdigest()[:16]
    return home / "trust" / f"{digest}.db"


class TrustArchive:
    """Cosigned checkpoints, per-witness sizes and timestamp tokens of one log."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout = 10000")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")  # evidence, re-obtainable: no fsync each
        self._db.executescript(_SCHEMA)

    @classmethod
    def for_log(cls, log: Log) -> TrustArchive:
        return cls(archive_path(log))

    @classmethod
    def existing(cls, log: Log) -> TrustArchive:
        """The log's archive for reading: an empty one in memory when there is none yet."""
        path = archive_path(log)
        return cls(path if path.exists() else ":memory:")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> TrustArchive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"TrustArchive({str(self.path)!r})"

    # ------------------------------------------------------------ checkpoints
    def merge(self, size: int, note: str) -> str:
        """Store ``note`` for ``size``, keeping signature lines already archived for it."""
        from .cosignature import add_cosignatures

        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT note FROM checkpoints WHERE size = ?", (size,)
                ).fetchone()
                merged = note
                if row is not None:
                    old_body, _ = parse_note(row[0])
                    new_body, new_sigs = parse_note(note)
                    # A different body for the same size replaces the row: callers store
                    # only notes they opened with the log key.
                    if old_body == new_body:
                        merged = add_cosignatures(row[0], new_sigs)
                self._db.execute(
                    "INSERT INTO checkpoints (size, note, updated_at) VALUES (?,?,?) "
                    "ON CONFLICT (size) DO UPDATE SET note = excluded.note, "
                    "updated_at = excluded.updated_at",
                    (size, merged, int(time.time())),
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return merged

    def checkpoint(self, size: int) -> ArchivedCheckpoint | None:
        row = self._db.execute("SELECT size, note FROM checkpoints WHERE size = ?", (size,))
        found = row.fetchone()
        return ArchivedCheckpoint(found[0], found[1]) if found else None

    def checkpoints(
        self, *, min_size: int = 0, newest_first: bool = True
    ) -> list[ArchivedCheckpoint]:
        order = "DESC" if newest_first else "ASC"
        rows = self._db.execute(
            f"SELECT size, note FROM checkpoints WHERE size >= ? ORDER BY size {order}",
            (min_size,),
        ).fetchall()
        return [ArchivedCheckpoint(r[0], r[1]) for r in rows]

    # ------------------------------------------------------------ witnesses
    def witness_size(self, witness: str) -> int:
        row = self._db.execute(
            "SELECT size FROM witness_sizes WHERE witness = ?", (witness,)
        ).fetchone()
        return int(row[0]) if row else 0

    def set_witness_size(self, witness: str, size: int) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO witness_sizes (witness, size) VALUES (?, ?) "
                "ON CONFLICT (witness) DO UPDATE SET size = excluded.size",
                (witness, size),
            )

    # ------------------------------------------------------------ timestamps
    def add_timestamp(self, stamp: StoredTimestamp) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO timestamps (size, body, tsa, response, gen_time) VALUES (?,?,?,?,?) "
                "ON CONFLICT (size, tsa) DO UPDATE SET body = excluded.body, "
                "response = excluded.response, gen_time = excluded.gen_time",
                (stamp.size, stamp.body, stamp.tsa, stamp.response, stamp.gen_time),
            )

    def timestamps(self, *, min_size: int = 0) -> list[StoredTimestamp]:
        rows = self._db.execute(
            "SELECT size, body, tsa, response, gen_time FROM timestamps WHERE size >= ? "
            "ORDER BY size",
            (min_size,),
        ).fetchall()
        return [StoredTimestamp(r[0], r[1], r[2], bytes(r[3]), r[4]) for r in rows]
