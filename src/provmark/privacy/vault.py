"""Vaults: wrapped data keys, field ciphertexts and the access log, beside the store.

* :class:`SQLiteVault` keeps its tables in the store's own SQLite file, through
  connections of its own (one per operation) with ``PRAGMA secure_delete=ON``.
* :class:`PostgresVault` keeps the same tables in the store's PostgreSQL schema.

The tables and the logic are in :mod:`provmark.privacy.sqlvault`.

Ordering: the writer stores a batch's ciphertexts (one transaction) *before* the
records that reference them (the next transaction), and with ``durable=True``
before the journal line. A crash can therefore leave a ciphertext without its
record (harmless: it is encrypted, and erasing the subject shreds it), never a
record whose ciphertext was not yet written.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, TypeVar

from ..crypto.fieldenc import MasterKey
from ..errors import StoreError
from .base import Vault
from .sqlvault import DDL, Cursor, SqlVault

__all__ = ["PostgresVault", "SQLiteVault", "SqlVault", "vault_for"]

T = TypeVar("T")


# ---------------------------------------------------------------- SQLite


class _SQLiteCursor:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str, args: Sequence[Any] = ()) -> None:
        self._db.execute(sql, args)

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._db.execute(sql, args).fetchall()

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._db.executemany(sql, rows)


class SQLiteVault(SqlVault):
    """Vault tables in an SQLite file (normally the store's), on connections of its own.

    Each operation opens a connection (``secure_delete=ON``: freed bytes are zeroed) and
    closes it, so the vault never holds the file open: closing the store still merges
    the WAL into the file, as with no vault at all. A connection costs ~0.1-0.2 ms, once
    per batch of records or per read.
    """

    def __init__(self, path: str | Path, master: MasterKey, *, timeout: float = 30.0) -> None:
        super().__init__(master)
        self.path = Path(path)
        self._timeout = timeout
        with self._connect() as db:
            try:
                db.execute("PRAGMA journal_mode=WAL")
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"{self.path}: cannot open the privacy vault ({exc})") from None
        self._transaction(self._create)

    def __repr__(self) -> str:
        return f"SQLiteVault({str(self.path)!r})"

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=self._timeout
            )
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: vault: {exc}") from None
        try:
            db.execute("PRAGMA secure_delete=ON")
            db.execute("PRAGMA synchronous=NORMAL")
            yield db
        finally:
            db.close()

    @staticmethod
    def _create(cur: Cursor) -> None:
        for stmt in DDL:
            cur.execute(stmt.format(blob="BLOB", serial="INTEGER PRIMARY KEY"))

    def _transaction(self, fn: Callable[[Cursor], T]) -> T:
        with self._connect() as db:
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    result = fn(_SQLiteCursor(db))
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:  # a full disk: SQLite rolled back already
                        db.execute("ROLLBACK")
                    raise
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"{self.path}: vault: {exc}") from None
            return result

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._connect() as db:
            try:
                return db.execute(sql, args).fetchall()
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"{self.path}: vault: {exc}") from None

    def _scrub(self) -> bool:
        """Copy the WAL into the file and truncate it, so old key bytes leave both."""
        deadline = time.monotonic() + 5.0
        with self._connect() as db:
            while True:
                try:
                    busy = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
                except sqlite3.DatabaseError:
                    busy = 1
                if not busy:
                    return True
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.02)


# ---------------------------------------------------------------- PostgreSQL


class _PgCursor:
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, args: Sequence[Any] = ()) -> None:
        self._conn.execute(sql.replace("?", "%s"), args)

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self._conn.execute(sql.replace("?", "%s"), args).fetchall())

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._conn.cursor() as cur:
            cur.executemany(sql.replace("?", "%s"), rows)


class PostgresVault(SqlVault):
    """Vault tables in a PostgreSQL schema (psycopg 3).

    ``connect`` returns a context manager yielding an autocommit connection, e.g. a
    ``psycopg_pool.ConnectionPool().connection`` (the store's pool: same schema), or
    use :meth:`from_url`.
    """

    def __init__(
        self,
        connect: Callable[[], AbstractContextManager[Any]],
        master: MasterKey,
        *,
        name: str = "postgresql",
        close: Callable[[], None] | None = None,
    ) -> None:
        import psycopg

        super().__init__(master)
        self._connect = connect
        self._name = name
        self._on_close = close
        self._errors: type[Exception] = psycopg.Error
        self._transaction(self._create)

    @classmethod
    def from_url(cls, url: str, master: MasterKey) -> PostgresVault:
        from psycopg_pool import ConnectionPool

        pool: ConnectionPool[Any] = ConnectionPool(
            url, min_size=1, max_size=2, kwargs={"autocommit": True}, open=True
        )
        try:
            return cls(pool.connection, master, close=pool.close)
        except BaseException:
            pool.close()
            raise

    def __repr__(self) -> str:
        return f"PostgresVault({self._name!r})"

    @staticmethod
    def _create(cur: Cursor) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('provmark-vault:' || current_schema()))")
        for stmt in DDL:
            cur.execute(
                stmt.format(blob="BYTEA", serial="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY")
            )

    def _transaction(self, fn: Callable[[Cursor], T]) -> T:
        try:
            with self._connect() as conn, conn.transaction():
                return fn(_PgCursor(conn))
        except self._errors as exc:
            raise StoreError(f"{self._name}: vault: {exc}".rstrip()) from None

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            with self._connect() as conn:
                return _PgCursor(conn).query(sql, args)
        except self._errors as exc:
            raise StoreError(f"{self._name}: vault: {exc}".rstrip()) from None

    def _lock_access_log(self, cur: Cursor) -> None:
        cur.execute("LOCK TABLE pm_access_log IN SHARE ROW EXCLUSIVE MODE")

    def _scrub(self) -> bool:
        """Rewrite the key table, so dead row versions holding old keys leave the heap."""
        try:
            with self._connect() as conn:
                conn.execute("VACUUM FULL pm_subject_keys")
            return True
        except self._errors:
            return False

    def close(self) -> None:
        super().close()
        if self._on_close is not None:
            self._on_close()


def vault_for(store: object, master: MasterKey) -> Vault | None:
    """The vault that goes with a store: same SQLite file, or same PostgreSQL schema."""
    path = getattr(store, "path", None)
    if isinstance(path, Path):
        return SQLiteVault(path, master)
    pool = getattr(store, "pool", None) or getattr(store, "_pool", None)  # PostgresStore
    if pool is not None and callable(getattr(pool, "connection", None)):
        return PostgresVault(pool.connection, master, name=str(getattr(store, "url", "pg")))
    return None
