"""Where fingerprints live: the :class:`FingerprintStore` protocol and its SQLite tables.

The tables (``softbind_*``) are feature tables of the record store
(:class:`~provmark.store.features.FeatureTables`): one schema, :data:`STEPS`, for
SQLite and PostgreSQL (``store_pg``), created and versioned by the store. On SQLite
they live in the provmark file, on a connection of their own, so the record tables
and their writer are untouched:

``softbind_meta``   key id of the soft-binding key and the fingerprint parameters
``softbind_items``  one row per fingerprinted output: record id, kind, sizes, MinHash
                    signature (text), capture cost in microseconds
``softbind_bands``  LSH band key -> item (text near-duplicates)
``softbind_parts``  keyed hash of a document / paragraph / sentence / pixel buffer -> item
``softbind_codes``  pHash, dHash and mean colour of an image region -> item

Image codes are searched in memory (:class:`~provmark.softbind.hamming.HammingIndex`),
loaded once and topped up with rows added since, by any process.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import ConfigError, StoreError
from ..store.features import Dialect, FeatureTables, Step
from ..store.sqlite import SQLiteTables
from . import image as img
from . import text as txt
from . import text_v1
from .codes import CodeHit, CodeIndex

__all__ = ["CodeHit", "FingerprintStore", "Item", "SQLiteFingerprintStore"]

# One schema for both databases (SQLite reads BIGINT, SMALLINT and DOUBLE PRECISION as
# its INTEGER and REAL). Item ids are never reused (AUTOINCREMENT on SQLite): the
# in-memory image index loads the codes above the highest item it has seen.
SCHEMA = """
CREATE TABLE IF NOT EXISTS softbind_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS softbind_items (
    id {serial}{autoincrement},
    record_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    media_type TEXT,
    size BIGINT NOT NULL,
    shingles INTEGER,
    width INTEGER,
    height INTEGER,
    signature {blob},
    parts {blob} NOT NULL,
    cost_us BIGINT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    scheme SMALLINT NOT NULL DEFAULT 1,
    anchors INTEGER,
    UNIQUE (record_id, kind)
);
CREATE TABLE IF NOT EXISTS softbind_bands (
    key BIGINT NOT NULL, item BIGINT NOT NULL, PRIMARY KEY (key, item)
){without_rowid};
CREATE TABLE IF NOT EXISTS softbind_parts (
    hash BIGINT NOT NULL, item BIGINT NOT NULL, ord INTEGER NOT NULL,
    kind SMALLINT NOT NULL, words INTEGER NOT NULL,
    PRIMARY KEY (hash, item, ord)
){without_rowid};
CREATE TABLE IF NOT EXISTS softbind_codes (
    item BIGINT NOT NULL, region SMALLINT NOT NULL,
    phash BIGINT NOT NULL, dhash BIGINT NOT NULL, colour INTEGER NOT NULL,
    PRIMARY KEY (item, region)
){without_rowid};
"""


def _create(conn: Any, dialect: Dialect) -> None:
    for stmt in dialect.ddl(SCHEMA).split(";"):
        if stmt.strip():
            conn.execute(stmt)
    if dialect.name == "sqlite":  # scheme-1 tables get the columns of scheme 2, rows stay
        columns = {r[1] for r in conn.execute("PRAGMA table_info(softbind_items)")}
        if "scheme" not in columns:
            conn.execute("ALTER TABLE softbind_items ADD COLUMN scheme INTEGER NOT NULL DEFAULT 1")
            conn.execute("ALTER TABLE softbind_items ADD COLUMN anchors INTEGER")


STEPS = (Step("softbind", _create),)
TABLES = ("softbind_items", "softbind_bands", "softbind_parts", "softbind_codes")
PARAMS = f"{txt.PARAMS}; {img.PARAMS}"
PARAMS_V1 = f"{text_v1.PARAMS}; {img.PARAMS}"  # scheme-1 stores: read, and upgraded on open


ITEM_COLUMNS = (
    "record_id, kind, media_type, size, shingles, width, height, signature, parts,"
    " cost_us, created_at, scheme, anchors"
)


def item_row(it: Item, packed: bytes, now: float) -> tuple[Any, ...]:
    """The values of one ``softbind_items`` row, in the order of :data:`ITEM_COLUMNS`."""
    return (
        it.record_id,
        it.kind,
        it.media_type,
        it.size,
        it.shingles,
        it.width,
        it.height,
        it.signature,
        packed,
        it.cost_us,
        now,
        it.scheme,
        it.anchors,
    )


def _signed(u: int) -> int:
    return u - (1 << 64) if u >= 1 << 63 else u


@dataclass(frozen=True)
class Item:
    """Everything stored for one fingerprinted output."""

    record_id: str
    kind: str  # "text" | "image"
    media_type: str | None
    size: int  # words (text) or pixels (image)
    cost_us: int
    shingles: int | None = None
    width: int | None = None
    height: int | None = None
    signature: bytes | None = None  # MinHash, 128 x uint32 little-endian
    scheme: int = txt.SCHEME  # text: 2 (characters and anchors) or 1 (word shingles)
    anchors: int | None = None  # text, scheme 2: distinct anchors
    bands: list[int] = field(default_factory=list)  # scheme 1 only
    parts: list[tuple[int, int, int, int]] = field(default_factory=list)  # hash, kind, ord, words
    codes: list[img.Code] = field(default_factory=list)


@dataclass(frozen=True)
class PartHit:
    hash: int
    item: int
    ordinal: int
    kind: int
    words: int


@dataclass(frozen=True)
class TextItem:
    item: int
    record_id: str
    shingles: int
    words: int
    signature: np.ndarray[Any, np.dtype[np.uint32]]
    scheme: int = txt.SCHEME
    anchors: int = 0


class FingerprintStore(Protocol):
    def check(self, key_id: str) -> None:
        """Refuse fingerprints made with another key or other parameters."""

    def put(self, items: Sequence[Item]) -> None: ...

    @property
    def legacy_text(self) -> bool:
        """Whether scheme-1 text fingerprints were stored (they are looked up too)."""

    def band_hits(self, keys: Sequence[int]) -> dict[int, int]:
        """item -> number of LSH bands shared (scheme 1)."""

    def part_hits(self, hashes: Sequence[int]) -> list[PartHit]: ...

    def text_items(self, ids: Iterable[int]) -> dict[int, TextItem]: ...

    def code_hits(self, probes: Sequence[img.Probe]) -> list[CodeHit]: ...

    def records(self, ids: Iterable[int]) -> dict[int, str]: ...

    def items_of(self, record_id: str) -> list[dict[str, Any]]: ...

    def remove(self, record_id: str) -> int: ...

    def record_ids(self) -> Iterator[str]: ...

    def clear(self) -> int: ...

    def stats(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


class SQLiteFingerprintStore:
    """Fingerprint tables inside a provmark SQLite file, on a connection of their own."""

    def __init__(self, tables: FeatureTables | str | Path, *, standalone: bool = False) -> None:
        """``tables`` is a provmark SQLite store (or its path); with ``standalone`` the
        path of a file of fingerprints alone (made when missing), for a provmark store
        that is not SQLite."""
        if isinstance(tables, str | Path):
            path = Path(tables)
            if standalone:
                path.parent.mkdir(parents=True, exist_ok=True)
            elif not path.is_file():
                raise StoreError(f"{path}: no such provmark database")
            tables = SQLiteTables(path)
        self.tables = tables
        self.path = Path(tables.where)
        self._lock = threading.RLock()
        self._stack = contextlib.ExitStack()
        try:
            self._db: sqlite3.Connection = self._stack.enter_context(tables.connect())
            self._db.execute("PRAGMA journal_mode=WAL")
            names = {
                r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if not standalone and ("records" not in names or "meta" not in names):
                raise StoreError(f"{self.path}: not a provmark database")
            if standalone and names - {"feature_migrations"} and "softbind_items" not in names:
                raise StoreError(f"{self.path}: not a provmark fingerprint file")
            tables.ensure_feature("softbind", STEPS)
        except BaseException as exc:
            self._stack.close()
            if isinstance(exc, sqlite3.DatabaseError):
                raise StoreError(f"{self.path}: cannot open fingerprints ({exc})") from None
            raise
        self._reset_codes()

    def _reset_codes(self) -> None:
        """The in-memory image index (loaded by ``_sync_codes``)."""
        self._codes = CodeIndex()

    def __repr__(self) -> str:
        return f"SQLiteFingerprintStore({str(self.path)!r})"

    @property
    def legacy_text(self) -> bool:
        with self._lock:
            row = self._db.execute(
                "SELECT value FROM softbind_meta WHERE key = 'legacy_text'"
            ).fetchone()
        return row is not None and row[0] == "1"

    # ------------------------------------------------------------ write
    def check(self, key_id: str) -> None:
        with self._lock:
            meta = dict(self._db.execute("SELECT key, value FROM softbind_meta").fetchall())
            if not meta:
                self._db.execute(
                    "INSERT OR IGNORE INTO softbind_meta VALUES ('key_id', ?), ('params', ?)",
                    (key_id, PARAMS),
                )
                meta = dict(self._db.execute("SELECT key, value FROM softbind_meta").fetchall())
            if meta.get("key_id") != key_id:
                raise ConfigError(
                    f"{self.path}: its fingerprints were made with another soft-binding key "
                    f"(key id {meta.get('key_id')}, this one is {key_id}); use the same "
                    "PROVMARK_HOME or secret, or clear them with 'provmark fingerprint clear'"
                )
            if meta.get("params") == PARAMS_V1:  # keep reading scheme 1, write scheme 2
                (n,) = self._db.execute(
                    "SELECT count(*) FROM softbind_items WHERE kind = 'text'"
                ).fetchone()
                self._db.executemany(
                    "INSERT OR REPLACE INTO softbind_meta VALUES (?, ?)",
                    [("params", PARAMS), ("legacy_text", "1" if n else "0")],
                )
                meta["params"] = PARAMS
            if meta.get("params") != PARAMS:
                raise ConfigError(
                    f"{self.path}: fingerprints made with other parameters ({meta.get('params')}); "
                    "clear them with 'provmark fingerprint clear' and add them again"
                )

    def put(self, items: Sequence[Item]) -> None:
        if not items:
            return
        items = list({(it.record_id, it.kind): it for it in items}.values())  # the last wins
        now = time.time()
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                names = list({it.record_id for it in items})
                present: set[tuple[str, str]] = set()
                for start in range(0, len(names), 500):
                    chunk = names[start : start + 500]
                    present.update(
                        db.execute(
                            "SELECT record_id, kind FROM softbind_items"
                            f" WHERE record_id IN ({','.join('?' * len(chunk))})",
                            chunk,
                        ).fetchall()
                    )
                parts: list[tuple[int, int, int, int, int]] = []
                bands: list[tuple[int, int]] = []
                codes: list[tuple[int, int, int, int, int]] = []
                for it in items:
                    if (it.record_id, it.kind) in present:
                        self._delete(it.record_id, it.kind)  # a re-add replaces
                    packed = np.array([p[0] for p in it.parts], dtype=np.int64).tobytes()
                    cur = db.execute(
                        f"INSERT INTO softbind_items ({ITEM_COLUMNS})"
                        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        item_row(it, packed, now),
                    )
                    item = int(cur.lastrowid or 0)
                    bands += [(k, item) for k in it.bands]
                    parts += [(h, item, o, k, w) for h, k, o, w in it.parts]
                    codes += [
                        (item, c.region, _signed(c.phash), _signed(c.dhash), c.colour)
                        for c in it.codes
                    ]
                db.executemany("INSERT OR IGNORE INTO softbind_bands VALUES (?, ?)", bands)
                db.executemany("INSERT OR IGNORE INTO softbind_parts VALUES (?, ?, ?, ?, ?)", parts)
                db.executemany("INSERT INTO softbind_codes VALUES (?, ?, ?, ?, ?)", codes)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def _delete(self, record_id: str, kind: str | None = None) -> int:
        db = self._db
        sql = "SELECT id, signature, parts, scheme FROM softbind_items WHERE record_id = ?"
        args: tuple[str, ...] = (record_id,)
        if kind is not None:
            sql += " AND kind = ?"
            args = (record_id, kind)
        rows = db.execute(sql, args).fetchall()
        for item, signature, packed, scheme in rows:
            if signature is not None and scheme == 1:
                sig = np.frombuffer(signature, dtype="<u4")
                db.executemany(
                    "DELETE FROM softbind_bands WHERE key = ? AND item = ?",
                    [(k, item) for k in text_v1.band_keys(sig)],
                )
            hashes = np.frombuffer(packed, dtype=np.int64).tolist()
            db.executemany(
                "DELETE FROM softbind_parts WHERE hash = ? AND item = ?",
                [(h, item) for h in hashes],
            )
            db.execute("DELETE FROM softbind_codes WHERE item = ?", (item,))
            db.execute("DELETE FROM softbind_items WHERE id = ?", (item,))
        return len(rows)

    def remove(self, record_id: str) -> int:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                n = self._delete(record_id)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return n

    def clear(self) -> int:
        """Drop every fingerprint (and the key binding): for a new key or new parameters."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                (n,) = self._db.execute("SELECT count(*) FROM softbind_items").fetchone()
                for table in (*TABLES, "softbind_meta"):
                    self._db.execute(f"DELETE FROM {table}")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._reset_codes()
            return int(n)

    # ------------------------------------------------------------ read
    def band_hits(self, keys: Sequence[int]) -> dict[int, int]:
        if not keys:
            return {}
        marks = ",".join("?" * len(keys))
        with self._lock:
            rows = self._db.execute(
                f"SELECT item, count(*) FROM softbind_bands WHERE key IN ({marks}) GROUP BY item",
                list(keys),
            ).fetchall()
        return {int(i): int(n) for i, n in rows}

    def part_hits(self, hashes: Sequence[int]) -> list[PartHit]:
        out: list[PartHit] = []
        unique = list(dict.fromkeys(hashes))
        with self._lock:
            for start in range(0, len(unique), 500):
                chunk = unique[start : start + 500]
                marks = ",".join("?" * len(chunk))
                out += [
                    PartHit(*row)
                    for row in self._db.execute(
                        "SELECT hash, item, ord, kind, words FROM softbind_parts"
                        f" WHERE hash IN ({marks})",
                        chunk,
                    )
                ]
        return out

    def text_items(self, ids: Iterable[int]) -> dict[int, TextItem]:
        wanted = list(ids)
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        with self._lock:
            rows = self._db.execute(
                "SELECT id, record_id, shingles, size, signature, scheme, anchors"
                f" FROM softbind_items WHERE id IN ({marks}) AND kind = 'text'",
                wanted,
            ).fetchall()
        return {
            r[0]: TextItem(
                r[0], r[1], r[2] or 0, r[3], np.frombuffer(r[4], dtype="<u4"), r[5], r[6] or 0
            )
            for r in rows
        }

    def records(self, ids: Iterable[int]) -> dict[int, str]:
        wanted = list(ids)
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        with self._lock:
            rows = self._db.execute(
                f"SELECT id, record_id FROM softbind_items WHERE id IN ({marks})", wanted
            ).fetchall()
        return {int(i): str(r) for i, r in rows}

    def _sync_codes(self) -> None:
        """Load the image codes added since the last lookup (by any process)."""
        rows = self._db.execute(
            "SELECT c.item, c.region, c.phash, c.dhash, c.colour, i.width, i.height"
            " FROM softbind_codes c JOIN softbind_items i ON i.id = c.item"
            " WHERE c.item > ? ORDER BY c.item",
            (self._codes.loaded_item,),
        ).fetchall()
        self._codes.add(rows)

    def code_hits(self, probes: Sequence[img.Probe]) -> list[CodeHit]:
        if not probes:
            return []
        with self._lock:
            self._sync_codes()
            return self._codes.search(probes)

    # ------------------------------------------------------------ maintenance
    def items_of(self, record_id: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, kind, media_type, size, shingles, width, height, length(parts) / 8,"
                " cost_us, created_at, scheme, anchors FROM softbind_items WHERE record_id = ?"
                " ORDER BY id",
                (record_id,),
            ).fetchall()
        keys: tuple[str, ...] = ("item", "kind", "media_type", "size", "shingles", "width")
        keys += ("height", "parts", "cost_us", "created_at", "scheme", "anchors")
        return [{k: v for k, v in zip(keys, r, strict=True) if v is not None} for r in rows]

    def record_ids(self) -> Iterator[str]:
        with self._lock:
            rows = self._db.execute("SELECT DISTINCT record_id FROM softbind_items").fetchall()
        for (rid,) in rows:
            yield str(rid)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            out: dict[str, Any] = {"params": PARAMS, "kinds": {}}
            meta = dict(self._db.execute("SELECT key, value FROM softbind_meta").fetchall())
            out["key_id"] = meta.get("key_id")
            for kind, n in self._db.execute(
                "SELECT kind, count(*) FROM softbind_items GROUP BY kind ORDER BY kind"
            ):
                costs = [
                    c
                    for (c,) in self._db.execute(
                        "SELECT cost_us FROM softbind_items WHERE kind = ? ORDER BY cost_us",
                        (kind,),
                    )
                ]
                out["kinds"][kind] = {
                    "items": n,
                    "cost_p50_ms": costs[len(costs) // 2] / 1000,
                    "cost_p99_ms": costs[min(len(costs) - 1, int(len(costs) * 0.99))] / 1000,
                }
            out["rows"] = {
                t: self._db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES
            }
            try:
                sizes = dict(
                    self._db.execute(
                        "SELECT name, sum(pgsize) FROM dbstat WHERE name LIKE 'softbind%'"
                        " OR name LIKE 'sqlite_autoindex_softbind%' GROUP BY name"
                    ).fetchall()
                )
                out["bytes"] = int(sum(sizes.values()))
            except sqlite3.DatabaseError:  # dbstat not compiled in
                out["bytes"] = None
            return out

    def close(self) -> None:
        with self._lock:
            self._stack.close()
