"""Which outputs were marked (C2PA manifest embedded, sidecar written), and which
markings failed: what the coverage report counts beside the records themselves.

The records say what was generated; whether an output was then marked happens
outside the record (``provmark mark``), so each marking is noted here, in a SQLite
file beside the store (``<store>.disclosure.db``; for PostgreSQL under
``$PROVMARK_HOME/disclosure/``). It is bookkeeping for reports, not evidence: the
marks themselves are verified by reading the manifest (``provmark disclose FILE``).
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..crypto.keystore import home_of
from ..record import now_utc
from ..store.features import StoreFile

if TYPE_CHECKING:
    from ..client import Provmark

_SCHEMA = """
CREATE TABLE IF NOT EXISTS marks (
    id INTEGER PRIMARY KEY,
    record_id TEXT NOT NULL,
    kind TEXT NOT NULL,          -- embedded | sidecar | failed
    media_type TEXT,
    path TEXT,
    detail TEXT,
    marked_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS marks_record ON marks (record_id);
"""

KINDS = ("embedded", "sidecar", "failed")


@dataclass(frozen=True)
class Mark:
    record_id: str
    kind: str
    media_type: str | None
    path: str | None
    detail: str | None
    marked_at: str


def ledger_path(pm: Provmark) -> Path:
    """``<store>.disclosure.db`` beside a SQLite store; else one per log under the home."""
    if isinstance(pm.store, StoreFile):
        return pm.store.beside("disclosure")
    home = home_of(pm.keystore)
    digest = hashlib.sha256(pm.store.origin.encode()).hexdigest()[:16]
    return home / "disclosure" / f"{digest}.db"


class MarkLedger:
    """The marks of one store."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout = 10000")
        self._db.executescript(_SCHEMA)

    @classmethod
    def for_provmark(cls, pm: Provmark) -> MarkLedger:
        return cls(ledger_path(pm))

    @classmethod
    def existing(cls, pm: Provmark) -> MarkLedger:
        """For reading: an empty ledger in memory when none was written yet."""
        path = ledger_path(pm)
        return cls(path if path.exists() else ":memory:")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> MarkLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def note(
        self,
        record_id: str,
        kind: str,
        *,
        media_type: str | None = None,
        path: str | None = None,
        detail: str | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"mark kind {kind!r} is not one of {KINDS}")
        with self._lock:
            self._db.execute(
                "INSERT INTO marks (record_id, kind, media_type, path, detail, marked_at) "
                "VALUES (?,?,?,?,?,?)",
                (record_id, kind, media_type, path, detail, now_utc()),
            )

    def marks(self, record_ids: list[str] | None = None) -> list[Mark]:
        """Every mark, or those of ``record_ids``, oldest first."""
        sql = "SELECT record_id, kind, media_type, path, detail, marked_at FROM marks"
        args: list[str] = []
        if record_ids is not None:
            if not record_ids:
                return []
            out: list[Mark] = []
            for i in range(0, len(record_ids), 500):
                chunk = record_ids[i : i + 500]
                rows = self._db.execute(
                    f"{sql} WHERE record_id IN ({','.join('?' * len(chunk))}) ORDER BY id", chunk
                ).fetchall()
                out += [Mark(*r) for r in rows]
            return out
        return [Mark(*r) for r in self._db.execute(sql + " ORDER BY id", args).fetchall()]
