"""Embedded store on one SQLite file (WAL, batched transactions).

Tables: ``records`` (exact signed payload bytes; ``idx`` is the log index),
``tags``, ``nodes`` (perfect Merkle subtrees, level 0 = leaf hashes),
``checkpoints`` (signed notes), ``keys`` (public keys) and ``meta``.
Several processes may append to one file: each batch takes the write lock
(``BEGIN IMMEDIATE``) and re-reads the tree size inside it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..crypto.keys import PublicKey
from ..errors import SchemaVersionError, StoreError
from ..log.merkle import CompactRange
from ..record import now_utc
from .base import (
    STORE_SCHEMA_VERSION,
    Entry,
    SealFn,
    StoredCheckpoint,
)
from .features import BOOKKEEPING, SQLITE, Dialect, Step, applied, beside, migrate_feature
from .sql import SQLStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    idx INTEGER PRIMARY KEY,
    record_id TEXT NOT NULL UNIQUE,
    slug TEXT NOT NULL,
    output_sha256 TEXT,
    model TEXT NOT NULL,
    model_version TEXT,
    operation TEXT NOT NULL,
    status TEXT NOT NULL,
    actor TEXT,
    generated_at TEXT NOT NULL,
    payload BLOB NOT NULL,
    signature TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_output ON records(output_sha256);
CREATE INDEX IF NOT EXISTS records_slug ON records(slug);
CREATE INDEX IF NOT EXISTS records_model ON records(model, generated_at);
CREATE INDEX IF NOT EXISTS records_actor ON records(actor, generated_at);
CREATE INDEX IF NOT EXISTS records_time ON records(generated_at);
CREATE TABLE IF NOT EXISTS tags (
    key TEXT NOT NULL, value TEXT NOT NULL, idx INTEGER NOT NULL,
    PRIMARY KEY (key, value, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS nodes (
    level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
    size INTEGER PRIMARY KEY, root BLOB NOT NULL, note TEXT NOT NULL, created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS keys (key_id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outputs (
    sha256 TEXT NOT NULL, idx INTEGER NOT NULL, PRIMARY KEY (sha256, idx)
) WITHOUT ROWID;
"""

# A store made before the outputs table: make it and index the records already there
# (v2 records with several outputs; the primary one is records.output_sha256).
_OUTPUTS_UPGRADE = """
CREATE TABLE IF NOT EXISTS outputs (
    sha256 TEXT NOT NULL, idx INTEGER NOT NULL, PRIMARY KEY (sha256, idx)
) WITHOUT ROWID;
INSERT OR IGNORE INTO outputs (sha256, idx)
SELECT json_extract(o.value, '$.sha256'), r.idx
FROM records r, json_each(CAST(r.payload AS TEXT), '$.outputs') o
WHERE instr(CAST(r.payload AS TEXT), '"outputs"') > 0
  AND json_extract(o.value, '$.sha256') IS NOT NULL
  AND json_extract(o.value, '$.sha256') IS NOT r.output_sha256
"""


def rollback(db: sqlite3.Connection) -> None:
    """Roll back the open transaction, if SQLite has not already: on a full disk or an I/O
    error it rolls back by itself, and a second ROLLBACK would hide the real error behind
    "cannot rollback - no transaction is active"."""
    if db.in_transaction:
        db.execute("ROLLBACK")


def run_script(db: sqlite3.Connection, script: str) -> None:
    """The ``;``-separated statements of ``script`` in one write transaction."""
    db.execute("BEGIN IMMEDIATE")
    try:
        for stmt in script.split(";"):
            if stmt.strip():
                db.execute(stmt)
        db.execute("COMMIT")
    except BaseException:
        rollback(db)
        raise


def _insert(db: sqlite3.Connection, verb: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """Many rows in few statements (``INSERT ... VALUES (...), (...), ...``).

    ``executemany`` runs one statement per row and releases the GIL around each; with
    a busy capturing thread every re-acquisition can wait, so a batch of 2048 rows
    took thousands of GIL hand-offs. A few hundred rows per statement take a few.
    """
    if not rows:
        return
    width = len(rows[0])
    # bound variables per statement: 32766 by default since SQLite 3.32, 999 before
    per = max(1, min(db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER), 32766) // width)
    group = "(" + ",".join("?" * width) + ")"
    for start in range(0, len(rows), per):
        part = rows[start : start + per]
        db.execute(f"{verb} VALUES {','.join([group] * len(part))}", [v for r in part for v in r])


def _require_store_file(path: Path) -> None:
    """What a command that only reads needs: an existing, non-empty SQLite file."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise StoreError(f"no provmark database at {path}") from None
    if size == 0:
        raise StoreError(f"{path}: empty file (0 bytes), not a provmark database")
    # Not opened here to read the header: closing any descriptor of a file drops this
    # process's POSIX locks on it, those of SQLite connections open to it included.


def _writable(path: Path) -> bool:
    """Can this process write the file and make the ``-wal``/``-shm`` files beside it?"""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def create_private(path: Path) -> None:
    """Make a new database file readable by its owner only (0600); SQLite gives its
    ``-wal``/``-shm``/journal files the database file's mode."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _connect(path: Path, read_only: bool) -> sqlite3.Connection:
    if not read_only:
        create_private(path)
        return sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    uri = path.resolve().as_uri()
    db = sqlite3.connect(
        f"{uri}?mode=ro", uri=True, isolation_level=None, check_same_thread=False, timeout=30
    )
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError:  # a WAL file on read-only media: no -shm can be made
        db.close()
        db = sqlite3.connect(
            f"{uri}?immutable=1", uri=True, isolation_level=None, check_same_thread=False
        )
    return db


class SQLiteTables:
    """Features' tables in an SQLite file (:class:`~provmark.store.features.FeatureTables`):
    each ``connect()`` is a connection of its own on the file, closed on exit, so a
    feature never holds the file open longer than it works on it."""

    path: Path
    _writes: bool

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        """A file of features' tables alone (made when missing, unless ``create=False``)."""
        self.path = Path(path)
        self._writes = create
        self._features: dict[str, int] = {}
        self._features_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SQLiteTables({str(self.path)!r})"

    @property
    def dialect(self) -> Dialect:
        return SQLITE

    @property
    def where(self) -> str:
        return str(self.path)

    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        try:
            db = _connect(self.path, not self._writes)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open ({exc})") from None
        try:
            db.execute("PRAGMA synchronous=NORMAL")
            yield db
        finally:
            db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                rollback(db)
                raise

    def ensure_feature(self, feature: str, steps: Sequence[Step]) -> int:
        with self._features_lock:
            if self._features.get(feature) == len(steps):
                return len(steps)
            with self.connect() as db:
                if not self._writes:
                    has = db.execute(
                        "SELECT 1 FROM sqlite_master WHERE name = 'feature_migrations'"
                    ).fetchone()
                    return applied(db, SQLITE, feature) if has else 0
                db.execute("BEGIN IMMEDIATE")
                try:
                    db.execute(BOOKKEEPING)
                    where = str(self.path)
                    version = migrate_feature(db, SQLITE, feature, steps, now_utc(), where)
                    db.execute("COMMIT")
                except BaseException:
                    rollback(db)
                    raise
            self._features[feature] = version
            return version


class SQLiteStore(SQLiteTables, SQLStore):
    """A :class:`~provmark.store.base.Store` on one SQLite file."""

    def __init__(self, path: str | Path, *, origin: str | None = None, create: bool = True) -> None:
        """``create=False`` (read-only commands) never writes a schema: a missing, empty
        (0 bytes) or foreign file is a :class:`StoreError`. A file on read-only media (or
        in a folder this process cannot write) is opened read-only."""
        super().__init__(path)
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a directory, not a database file")
        if self.path.parent and not self.path.parent.exists():
            raise StoreError(f"folder {self.path.parent} does not exist")
        if not create:
            _require_store_file(self.path)
        self._lock = threading.RLock()
        self.read_only = self.path.exists() and not _writable(self.path)
        self._writes = create and not self.read_only
        if self.read_only and create:
            raise StoreError(
                f"{self.path} cannot be written here (read-only media or permissions); "
                "open it with read_only=True to read it (what the CLI's reading commands do)"
            )
        try:
            self._db = _connect(self.path, self.read_only)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open ({exc})") from None
        try:
            self._db.execute("PRAGMA foreign_keys=ON")
            # indexes on random keys (output hashes) outgrow the 2 MB default cache past
            # ~100k records and every insert then reads pages from disk
            self._db.execute("PRAGMA cache_size=-65536")
            self.origin = self._init_schema(origin, create)
            if not self.read_only:
                self._db.execute("PRAGMA journal_mode=WAL")  # after: a foreign file is untouched
                self._db.execute("PRAGMA synchronous=NORMAL")
        except BaseException as exc:
            self._db.close()
            if isinstance(exc, sqlite3.DatabaseError):
                raise StoreError(f"{self.path}: not a provmark database ({exc})") from None
            raise
        self._range: CompactRange | None = None

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    # ------------------------------------------------------------ schema
    def _init_schema(self, origin: str | None, create: bool) -> str:
        db = self._db
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if tables and "meta" not in tables:
            raise StoreError(
                f"{self.path}: an SQLite database of another application "
                f"(tables: {', '.join(sorted(tables)[:5])}); refusing to touch it"
            )
        if "meta" not in tables and (self.read_only or not create):
            raise StoreError(f"{self.path}: not a provmark database (no provmark tables)")
        if "meta" in tables:
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            version = int(meta.get("schema_version", "0"))
            if version > STORE_SCHEMA_VERSION:
                raise SchemaVersionError(
                    f"{self.path} was written by a newer provmark (store schema {version}, "
                    f"this one knows {STORE_SCHEMA_VERSION}); upgrade provmark"
                )
            if "origin" in meta:
                if "outputs" not in tables and not self.read_only:
                    run_script(db, _OUTPUTS_UPGRADE)
                return str(meta["origin"])
            if self.read_only or not create:
                raise StoreError(f"{self.path}: a provmark database without an origin")
        db.execute("BEGIN IMMEDIATE")
        try:
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    db.execute(stmt)
            log_id = uuid.uuid4().hex[:16]
            chosen = origin or f"provmark.local/log/{log_id}"
            db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?), ('origin', ?),"
                " ('created_at', ?)",
                (str(STORE_SCHEMA_VERSION), chosen, now_utc()),
            )
            db.execute("COMMIT")
        except BaseException:
            rollback(db)
            raise
        return str(db.execute("SELECT value FROM meta WHERE key='origin'").fetchone()[0])

    # ------------------------------------------------------------ writes
    def append(self, entries: Sequence[Entry], seal: SealFn) -> StoredCheckpoint:
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                checkpoint = self._append_locked(entries, seal)
                db.execute("COMMIT")
            except BaseException:
                rollback(db)
                self._range = None
                raise
            return checkpoint

    def _append_locked(self, entries: Sequence[Entry], seal: SealFn) -> StoredCheckpoint:
        db = self._db
        size = self.tree_size()
        rng = self._range
        if rng is None or rng.size != size:  # another process appended meanwhile
            rng = CompactRange.from_nodes(size, self)
        existing = self.has([e.record_id for e in entries])
        fresh: list[Entry] = []
        seen: set[str] = set()
        for e in entries:
            if e.record_id not in existing and e.record_id not in seen:
                seen.add(e.record_id)
                fresh.append(e)
        if fresh:
            rows: list[tuple[Any, ...]] = []
            tag_rows: list[tuple[str, str, int]] = []
            output_rows: list[tuple[str, int]] = []
            leaves: list[bytes] = []
            for i, e in enumerate(fresh):
                idx = size + i
                rows.append(
                    (
                        idx,
                        e.record_id,
                        e.slug,
                        e.output_sha256,
                        e.model,
                        e.model_version,
                        e.operation,
                        e.status,
                        e.actor,
                        e.generated_at,
                        e.payload,
                        e.signature_json().decode(),
                    )
                )
                tag_rows.extend((k, v, idx) for k, v in e.tags.items())
                if e.outputs:
                    output_rows.extend((sha, idx) for sha in e.outputs)
                leaves.append(e.leaf_hash())
            _insert(db, "INSERT INTO records", rows)
            _insert(db, "INSERT INTO tags", tag_rows)
            _insert(db, "INSERT OR IGNORE INTO outputs", output_rows)
            rng = rng.copy()
            nodes = rng.extend(leaves)
            _insert(db, "INSERT INTO nodes", [(lv, ix, h) for (lv, ix), h in nodes])
        elif size:
            latest = self.latest_checkpoint()
            if latest is not None and latest.size == size:
                self._range = rng
                return latest
        root = rng.root()
        note = seal(rng.size, root)
        created = now_utc()
        db.execute(
            "INSERT OR REPLACE INTO checkpoints VALUES (?,?,?,?)", (rng.size, root, note, created)
        )
        self._range = rng
        return StoredCheckpoint(size=rng.size, root=root, note=note, created_at=created)

    # ------------------------------------------------------------ the file
    def beside(self, kind: str) -> Path:
        return beside(self.path, kind)

    def backup_to(self, target: Path) -> dict[str, Any]:
        """A consistent copy with SQLite's online backup API, as one self-contained file
        (no WAL); returns what the copy holds."""
        src = sqlite3.connect(self.path, timeout=30)
        dst = sqlite3.connect(target)
        try:
            with dst:
                src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")
            meta = dict(dst.execute("SELECT key, value FROM meta").fetchall())
            records = dst.execute("SELECT COUNT(*) FROM records").fetchone()[0]
            cp = dst.execute(
                "SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1"
            ).fetchone()
        finally:
            dst.close()
            src.close()
        return {
            "origin": meta.get("origin"),
            "records": int(records),
            "tree_size": int(cp[0]) if cp else 0,
            "checkpoint": cp[1] if cp else None,
        }

    def put_public_keys(self, keys: Sequence[PublicKey]) -> None:
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO keys VALUES (?, ?)",
                [(k.key_id, json.dumps(k.to_json(), sort_keys=True)) for k in keys],
            )

    # ------------------------------------------------------------ reads
    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"{self.path}: {exc}") from None

    def has(self, record_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        ids = list(record_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(
                r[0]
                for r in self._query(
                    f"SELECT record_id FROM records WHERE record_id IN ({marks})", chunk
                )
            )
        return found

    def get_nodes(self, ids: Sequence[tuple[int, int]]) -> list[bytes]:
        if not ids:
            return []
        found: dict[tuple[int, int], bytes] = {}
        for start in range(0, len(ids), 400):
            chunk = ids[start : start + 400]
            clause = " OR ".join("(level = ? AND idx = ?)" for _ in chunk)
            args = [v for node in chunk for v in node]
            for level, idx, h in self._query(
                f"SELECT level, idx, hash FROM nodes WHERE {clause}", args
            ):
                found[(level, idx)] = bytes(h)
        try:
            return [found[node] for node in ids]
        except KeyError as exc:
            raise KeyError(f"Merkle node {exc.args[0]} is missing from {self.path}") from None

    def stats(self) -> dict[str, Any]:
        latest = self.latest_checkpoint()
        return {
            "backend": "sqlite",
            "path": str(self.path),
            "origin": self.origin,
            "records": self.count(),
            "tree_size": self.tree_size(),
            "checkpoint_size": latest.size if latest else 0,
            "checkpoint_at": latest.created_at if latest else None,
        }

    def close(self) -> None:
        with self._lock:
            self._db.close()
