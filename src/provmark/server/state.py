"""The server's own small database: API tokens, the audit log of reads, webhooks.

It is a separate database from the record store, so that the ``Store`` protocol
stays about records only. ``StateDB(target)`` opens either an SQLite file (one
server, or several processes on one machine) or a ``postgresql://`` URL (several
API servers behind a load balancer share tokens, subscriptions and deliveries).
Tables are prefixed ``pmsrv_`` so they can live in the same PostgreSQL database
as the records.

Where it is (``resolve_state``): ``--state``, else ``$PROVMARK_SERVER_STATE``, else
the record database itself when that is PostgreSQL, else ``<home>/server.db``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from ..crypto.keystore import default_home
from ..errors import ConfigError, StoreError

_TABLES = (
    """CREATE TABLE IF NOT EXISTS pmsrv_tokens (
        token_id TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, role TEXT NOT NULL,
        name TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
        last_used_at DOUBLE PRECISION, revoked_at DOUBLE PRECISION)""",
    """CREATE TABLE IF NOT EXISTS pmsrv_audit (
        entry_id TEXT PRIMARY KEY, at DOUBLE PRECISION NOT NULL, token_id TEXT NOT NULL,
        role TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL, reason TEXT)""",
    "CREATE INDEX IF NOT EXISTS pmsrv_audit_at ON pmsrv_audit(at)",
    """CREATE TABLE IF NOT EXISTS pmsrv_webhooks (
        sub_id TEXT PRIMARY KEY, url TEXT NOT NULL, events TEXT NOT NULL, secret TEXT NOT NULL,
        description TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS pmsrv_deliveries (
        delivery_id TEXT PRIMARY KEY, sub_id TEXT NOT NULL, event_id TEXT NOT NULL,
        event_type TEXT NOT NULL, body TEXT NOT NULL, status TEXT NOT NULL,
        attempts INTEGER NOT NULL, next_at DOUBLE PRECISION NOT NULL,
        lease_until DOUBLE PRECISION NOT NULL, created_at DOUBLE PRECISION NOT NULL,
        last_error TEXT, finished_at DOUBLE PRECISION)""",
    "CREATE INDEX IF NOT EXISTS pmsrv_deliveries_due ON pmsrv_deliveries(status, next_at)",
    """CREATE TABLE IF NOT EXISTS pmsrv_attempts (
        delivery_id TEXT NOT NULL, attempt INTEGER NOT NULL, at DOUBLE PRECISION NOT NULL,
        status_code INTEGER, error TEXT, duration_ms DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (delivery_id, attempt))""",
    """CREATE TABLE IF NOT EXISTS pmsrv_cursors (
        name TEXT PRIMARY KEY, value BIGINT NOT NULL)""",
)


class Cursor(Protocol):
    """What a transaction body gets: run a statement, read rows."""

    def execute(self, sql: str, args: Sequence[Any] = ()) -> int: ...

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


def resolve_state(state: str | None, db: str | None, home: str | os.PathLike[str] | None) -> str:
    """Where the server state lives; see the module doc."""
    if state:
        return state
    env = os.environ.get("PROVMARK_SERVER_STATE")
    if env:
        return env
    if db and db.startswith(("postgresql://", "postgres://")):
        return db
    base = Path(home) if home else default_home()
    base.mkdir(parents=True, exist_ok=True)
    return str(base / "server.db")


class _SQLiteCursor:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        return self._db.execute(sql, tuple(args)).rowcount

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._db.execute(sql, tuple(args)).fetchall()


class _PgCursor:
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        with self._conn.cursor() as cur:
            cur.execute(sql.replace("?", "%s"), tuple(args))
            return int(cur.rowcount)

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._conn.cursor() as cur:
            cur.execute(sql.replace("?", "%s"), tuple(args))
            return list(cur.fetchall())


class StateDB:
    """One connection (SQLite or PostgreSQL) behind a lock; statements use ``?`` marks."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.is_postgres = target.startswith(("postgresql://", "postgres://"))
        self._lock = threading.RLock()
        self._conn: Any = None
        self._closed = False
        with self.transaction() as cur:
            for stmt in _TABLES:
                cur.execute(stmt)

    def __repr__(self) -> str:
        where = "postgresql" if self.is_postgres else self.target
        return f"StateDB({where!r})"

    def _connect(self) -> None:
        if self.is_postgres:
            try:
                import psycopg
            except ImportError as exc:
                raise ConfigError(f"server state on PostgreSQL needs psycopg: {exc}") from None
            try:
                self._conn = psycopg.connect(self.target, autocommit=True, connect_timeout=10)
            except psycopg.Error as exc:
                raise StoreError(f"server state database: {exc}") from None
            return
        path = Path(self.target)
        if path.parent and not path.parent.exists():
            raise ConfigError(f"folder {path.parent} of the server state file does not exist")
        from ..store.sqlite import create_private

        try:
            create_private(path)  # tokens' hashes, webhook secrets (sealed), the audit log
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path}: cannot open the server state ({exc})") from None
        self._conn = db

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Cursor]:
        """One atomic unit of statements."""
        with self._lock:
            conn = self._connection()
            if self.is_postgres:
                try:
                    with conn.transaction():
                        yield _PgCursor(conn)
                except Exception as exc:
                    self._drop_if_broken(exc)
                    raise
                return
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"server state: {exc}") from None
            try:
                yield _SQLiteCursor(conn)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def _connection(self) -> Any:
        if self._closed:
            raise StoreError("the server state database is closed")
        if self._conn is None or (self.is_postgres and (self._conn.closed or self._conn.broken)):
            self._connect()
        return self._conn

    def _drop_if_broken(self, exc: BaseException) -> None:
        import psycopg

        if isinstance(exc, psycopg.OperationalError) and self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    def _run(self, sql: str, args: Sequence[Any], fetch: bool) -> Any:
        with self._lock:
            for attempt in (1, 2):
                conn = self._connection()
                cur: Cursor = _PgCursor(conn) if self.is_postgres else _SQLiteCursor(conn)
                try:
                    return cur.query(sql, args) if fetch else cur.execute(sql, args)
                except sqlite3.DatabaseError as exc:
                    raise StoreError(f"server state: {exc}") from None
                except Exception as exc:
                    if not self.is_postgres:
                        raise
                    self._drop_if_broken(exc)
                    if attempt == 2 or self._conn is not None:
                        raise StoreError(f"server state database: {exc}") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        """One statement, committed on its own."""
        return int(self._run(sql, args, fetch=False))

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = self._run(sql, args, fetch=True)
        return rows

    def ping(self) -> None:
        self.query("SELECT 1")

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._conn is not None:
                self._conn.close()
