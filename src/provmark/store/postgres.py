"""PostgreSQL store: the same contract as the SQLite store, for many processes and hosts.

Tables are those of the SQLite store (see ``migrations/0001_init.sql``); the
schema is versioned by the SQL files in ``migrations/``, applied on open.

One sequencer at a time: ``append`` takes a transaction-scoped advisory lock
(``pg_advisory_xact_lock``) and re-reads the tree size inside it, so any number
of API servers and workers may append to one log. The lock goes with the
transaction: if the appending process dies, PostgreSQL rolls its batch back
and the next waiter continues on a consistent, append-only log.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

import psycopg
from psycopg import conninfo
from psycopg_pool import ConnectionPool, PoolTimeout

from ..crypto.keys import PublicKey
from ..errors import ConfigError, DataRefused, StoreError
from ..log.merkle import CompactRange
from ..record import log_entry, now_utc, parse_time
from . import migrations
from .base import (
    INDEX_COLUMNS,
    Entry,
    SealFn,
    StoredCheckpoint,
)
from .features import BOOKKEEPING, POSTGRESQL, Dialect, Step, applied, migrate_feature
from .sql import SQLStore, stored_checkpoints

T = TypeVar("T")

_COLUMNS = "idx, record_id, payload, signature"
_INDEX_COLUMNS = ", ".join(INDEX_COLUMNS)
# (column, PostgreSQL type) in COPY order; binary COPY needs the exact types.
_Columns = tuple[tuple[str, str], ...]
_RECORD_COLUMNS: _Columns = (
    ("idx", "int8"), ("record_id", "uuid"), ("slug", "text"), ("output_sha256", "text"),
    ("model", "text"), ("model_version", "text"), ("operation", "text"), ("status", "text"),
    ("actor", "text"), ("generated_at", "timestamptz"), ("payload", "bytea"),
    ("signature", "text"),
)  # fmt: skip
_TAG_COLUMNS: _Columns = (("key", "text"), ("value", "text"), ("idx", "int8"))
_NODE_COLUMNS: _Columns = (("level", "int2"), ("idx", "int8"), ("hash", "bytea"))
_OUTPUT_COLUMNS: _Columns = (("sha256", "text"), ("idx", "int8"))
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").fullmatch
# log_entry = b'{"record":' + payload + b',"signature":' + signature JSON + b'}'
_SIG_KEY = b',"signature":'
_SIG_START = len(b'{"record":') + len(_SIG_KEY)
_LATEST_SQL = b"SELECT size, root, note, created_at FROM checkpoints ORDER BY size DESC LIMIT 1"
_CHECKPOINT_SQL = (
    "INSERT INTO checkpoints VALUES (%s, %s, %s, %s) ON CONFLICT (size) DO UPDATE"
    " SET root = excluded.root, note = excluded.note, created_at = excluded.created_at"
)
# A hung sequencer (stopped, not dead) must not hold the log forever.
_LOCK_SQL = (
    "BEGIN ISOLATION LEVEL READ COMMITTED;"
    " SET LOCAL idle_in_transaction_session_timeout = '15s';"
    f" SELECT pg_advisory_xact_lock({migrations.LOCK_CLASS}, hashtext(current_schema()))"
)
# Two processes creating feature tables at once would collide in the catalog.
_FEATURE_LOCK = (
    f"SELECT pg_advisory_xact_lock({migrations.LOCK_CLASS},"
    " hashtext('features:' || current_schema()))"
)
_KEEPALIVES = {"keepalives": "1", "keepalives_idle": "10", "keepalives_interval": "3",
               "keepalives_count": "3"}  # fmt: skip


def _ids(values: Sequence[str]) -> list[str]:
    """Record ids that can be stored (lowercase UUIDs); anything else cannot match."""
    return [v for v in values if isinstance(v, str) and _UUID(v)]


def _why(dsn: str, timeout: float) -> str:
    """The server's reason for refusing connections (the pool only reports a timeout)."""
    try:
        psycopg.connect(dsn, connect_timeout=max(1, int(timeout))).close()
    except psycopg.Error as exc:
        return " ".join(part.strip() for part in str(exc).splitlines()) or type(exc).__name__
    return f"no connection within {timeout:g}s"


# SQLSTATE classes of a refusal of the data itself: 22 data exception (a NUL in text,
# a value out of range), 23 integrity constraint, 54 program limit (an index row over
# the B-tree limit). Anything else (connection, resources, locks) passes with time.
_REFUSAL_CLASSES = ("22", "23", "54")


def _refusal(exc: psycopg.Error) -> DataRefused | None:
    state = exc.sqlstate or ""
    if state[:2] not in _REFUSAL_CLASSES:
        return None
    primary = exc.diag.message_primary or str(exc).splitlines()[0]
    return DataRefused(f"PostgreSQL refuses the data (SQLSTATE {state}): {primary}")


def describe(url: str) -> str:
    """``host:port/dbname`` of a connection string, without the password."""
    try:
        info = conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://<invalid URL>"
    host = info.get("host") or "localhost"
    port = info.get("port") or "5432"
    return f"postgresql://{host}:{port}/{info.get('dbname') or ''}"


def _translated(url: str, exc: psycopg.Error) -> Exception:
    refused = _refusal(exc)
    return refused if refused is not None else StoreError(f"{url}: {exc}".rstrip())


class PostgresStore(SQLStore):
    """A :class:`~provmark.store.base.Store` in a PostgreSQL database (psycopg 3, pooled).

    ``write`` chooses how a batch goes in: ``"copy"`` (``COPY FROM STDIN``, the
    default: batches over ``pipeline_rows`` rows are COPYed, smaller ones pipelined)
    or ``"executemany"`` (always pipelined inserts). ``migrate=False`` refuses to open a
    database whose schema is behind instead of upgrading it.
    """

    pipeline_rows = 16

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 4,
        origin: str | None = None,
        migrate: bool = True,
        write: str = "copy",
        connect_timeout: float = 10.0,
        create: bool = True,
    ) -> None:
        """``create=False`` (read-only commands) never creates or upgrades the schema: a
        database without a provmark store is a :class:`StoreError`."""
        if pool_size < 1:
            raise ConfigError(f"pool_size must be at least 1, not {pool_size}")
        if write not in ("copy", "executemany"):
            raise ConfigError(f"write must be 'copy' or 'executemany', not {write!r}")
        self.url = describe(url)
        self._writes = create  # features' tables too (see ensure_feature)
        self._features: dict[str, int] = {}
        self._features_lock = threading.Lock()
        self._write = write
        self._write_lock = threading.Lock()
        self._range: CompactRange | None = None
        try:
            info = conninfo.conninfo_to_dict(url)
        except psycopg.ProgrammingError as exc:
            raise ConfigError(f"invalid PostgreSQL URL: {exc}") from None
        extra = {k: v for k, v in _KEEPALIVES.items() if k not in info}
        dsn = conninfo.make_conninfo(url, **extra)
        self._pool = ConnectionPool(
            dsn,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True},
            name="provmark",
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
        except PoolTimeout:
            self._pool.close()
            raise StoreError(
                f"cannot connect to {self.url}: {_why(dsn, connect_timeout)}"
            ) from None
        try:
            self.schema_version, self.origin = self._init_schema(origin, migrate, create)
        except BaseException:
            self._pool.close()
            raise

    def __repr__(self) -> str:
        return f"PostgresStore({self.url!r})"

    # ------------------------------------------------------------ schema
    def _init_schema(self, origin: str | None, migrate: bool, create: bool) -> tuple[int, str]:
        def run(conn: psycopg.Connection[Any]) -> tuple[int, str]:
            version = migrations.current(conn)
            migrations.check(version, self.url)
            if not create:
                if version == 0:
                    raise StoreError(f"{self.url}: no provmark store in this database")
                row = conn.execute("SELECT value FROM meta WHERE key = 'origin'").fetchone()
                if row is None:
                    raise StoreError(f"{self.url}: no provmark store in this database")
                return version, str(row[0])
            if version < migrations.latest():
                if not migrate:
                    raise StoreError(
                        f"{self.url} has store schema v{version}, this provmark needs "
                        f"v{migrations.latest()}; open it with migrate=True to upgrade"
                    )
                version = migrations.migrate(conn, where=self.url)
            chosen = origin or f"provmark.local/log/{uuid.uuid4().hex[:16]}"
            conn.execute(
                "INSERT INTO meta VALUES ('origin', %s), ('created_at', %s)"
                " ON CONFLICT (key) DO NOTHING",
                (chosen, now_utc()),
            )
            row = conn.execute("SELECT value FROM meta WHERE key = 'origin'").fetchone()
            return version, str(row[0]) if row else chosen

        return self._run(run, retry=False)

    # ------------------------------------------------------------ feature tables
    @property
    def dialect(self) -> Dialect:
        return POSTGRESQL

    @property
    def where(self) -> str:
        return self.url

    @contextlib.contextmanager
    def connect(self) -> Iterator[psycopg.Connection[Any]]:
        """One of the pool's connections (autocommit), for features' tables; errors are
        :class:`StoreError`, or :class:`DataRefused` when PostgreSQL refuses the data."""
        try:
            with self._pool.connection() as conn:
                yield conn
        except psycopg.Error as exc:
            raise _translated(self.url, exc) from None
        except PoolTimeout:
            raise StoreError(f"{self.url}: no database connection available") from None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        with self.connect() as conn, conn.transaction():
            yield conn

    def ensure_feature(self, feature: str, steps: Sequence[Step]) -> int:
        with self._features_lock:
            if self._features.get(feature) == len(steps):
                return len(steps)
            if not self._writes:
                with self.connect() as conn:
                    has = conn.execute("SELECT to_regclass('feature_migrations')").fetchone()
                    return applied(conn, POSTGRESQL, feature) if has and has[0] else 0
            with self.transaction() as conn:
                conn.execute(_FEATURE_LOCK)
                conn.execute(BOOKKEEPING)
                version = migrate_feature(conn, POSTGRESQL, feature, steps, now_utc(), self.url)
            self._features[feature] = version
            return version

    # ------------------------------------------------------------ plumbing
    def _run(self, fn: Callable[[psycopg.Connection[Any]], T], *, retry: bool = True) -> T:
        """Run ``fn`` on a pooled connection; reads retry once on a broken connection."""
        for attempt in (1, 2):
            try:
                with self._pool.connection() as conn:
                    return fn(conn)
            except psycopg.Error as exc:
                refused = _refusal(exc)
                if refused is not None:
                    raise refused from None
                if isinstance(exc, psycopg.OperationalError) and retry and attempt == 1:
                    continue  # the pool dropped the broken connection (e.g. server restart)
                raise StoreError(f"{self.url}: {exc}".rstrip()) from None
            except PoolTimeout:
                raise StoreError(f"{self.url}: no database connection available") from None
        raise AssertionError("unreachable")

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._run(lambda conn: conn.execute(sql.encode(), args).fetchall())

    # ------------------------------------------------------------ writes
    def append(self, entries: Sequence[Entry], seal: SealFn) -> StoredCheckpoint:
        def run(conn: psycopg.Connection[Any]) -> StoredCheckpoint:
            try:
                checkpoint = self._append_tx(conn, entries, seal)
                conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(psycopg.Error):  # the connection may be gone
                    conn.execute("ROLLBACK")
                raise
            return checkpoint

        with self._write_lock:
            try:
                return self._run(run, retry=False)
            except BaseException:
                self._range = None
                raise

    def _append_tx(
        self, conn: psycopg.Connection[Any], entries: Sequence[Entry], seal: SealFn
    ) -> StoredCheckpoint:
        # One round trip: begin, take the sequencer lock, then read the tree size and the
        # already-stored ids. READ COMMITTED (explicit, whatever the server default) gives
        # each statement a snapshot taken after the lock was granted, so they see every
        # batch committed by the previous holder. The ids are inlined: they are UUIDs.
        ids = ",".join(_ids([e.record_id for e in entries]))
        cur = conn.execute(
            f"{_LOCK_SQL}; SELECT max(idx) FROM nodes WHERE level = 0;"
            f" SELECT record_id FROM records WHERE record_id = ANY('{{{ids}}}'::uuid[])".encode()
        )
        _, (size_row, *_), id_rows = [r.fetchall() for r in cur.results() if r.description]
        size = 0 if size_row[0] is None else int(size_row[0]) + 1
        existing = {str(r[0]) for r in id_rows}
        rng = self._range
        if rng is None or rng.size != size:  # another process appended meanwhile
            rng = CompactRange.from_nodes(size, _ConnNodes(self, conn))
        fresh: list[Entry] = []
        for e in entries:
            if e.record_id not in existing:
                existing.add(e.record_id)
                fresh.append(e)
        tables: list[tuple[str, _Columns, list[tuple[Any, ...]]]] = []
        if fresh:
            rng = rng.copy()
            tables = _rows(size, fresh, rng)
        elif size:
            latest = stored_checkpoints(conn.execute(_LATEST_SQL).fetchall())
            if latest and latest[0].size == size:
                self._range = rng
                return latest[0]
        root = rng.root()
        checkpoint = StoredCheckpoint(
            size=rng.size, root=root, note=seal(rng.size, root), created_at=now_utc()
        )
        self._write_rows(conn, tables, checkpoint)
        self._range = rng
        return checkpoint

    def _write_rows(
        self,
        conn: psycopg.Connection[Any],
        tables: list[tuple[str, _Columns, list[tuple[Any, ...]]]],
        cp: StoredCheckpoint,
    ) -> None:
        # COPY costs two round trips per table but far less server time per row; small
        # batches go faster as pipelined INSERTs (one round trip for everything).
        rows = sum(len(data) for _, _, data in tables)
        small = self._write == "executemany" or rows <= self.pipeline_rows
        with conn.cursor() as cur, conn.pipeline() if small else contextlib.nullcontext():
            for table, columns, data in tables:
                names = ", ".join(name for name, _ in columns)
                if small and data:
                    marks = ", ".join(["%s"] * len(columns))
                    cur.executemany(
                        f"INSERT INTO {table} ({names}) VALUES ({marks})".encode(), data
                    )
                elif data:
                    sql = f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)"
                    with cur.copy(sql.encode()) as copy:
                        copy.set_types([kind for _, kind in columns])
                        for r in data:
                            copy.write_row(r)
            cur.execute(_CHECKPOINT_SQL, (cp.size, cp.root, cp.note, cp.created_at))

    def put_public_keys(self, keys: Sequence[PublicKey]) -> None:
        rows = [(k.key_id, json.dumps(k.to_json(), sort_keys=True)) for k in keys]
        if not rows:
            return

        def run(conn: psycopg.Connection[Any]) -> None:
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO keys VALUES (%s, %s)"
                    " ON CONFLICT (key_id) DO UPDATE SET body = excluded.body",
                    rows,
                )

        self._run(run)

    # ------------------------------------------------------------ reads
    def _record_id_ok(self, value: str) -> bool:
        return bool(_ids([value]))

    def has(self, record_ids: Sequence[str]) -> set[str]:
        ids = _ids(list(record_ids))
        if not ids:
            return set()
        rows = self._query(
            "SELECT record_id FROM records WHERE record_id = ANY(%s::uuid[])", (ids,)
        )
        return {str(r[0]) for r in rows}

    def get_nodes(self, ids: Sequence[tuple[int, int]]) -> list[bytes]:
        return self._run(lambda conn: _read_nodes(conn, ids, self.url))

    def stats(self) -> dict[str, Any]:
        latest = self.latest_checkpoint()
        pool = self._pool.get_stats()
        return {
            "backend": "postgresql",
            "url": self.url,
            "origin": self.origin,
            "schema_version": self.schema_version,
            "records": self.count(),
            "tree_size": self.tree_size(),
            "checkpoint_size": latest.size if latest else 0,
            "checkpoint_at": latest.created_at if latest else None,
            "pool_size": pool.get("pool_size", 0),
            "pool_available": pool.get("pool_available", 0),
        }

    def close(self) -> None:
        self._pool.close()


def _rows(
    size: int, fresh: list[Entry], rng: CompactRange
) -> list[tuple[str, _Columns, list[tuple[Any, ...]]]]:
    """Rows of records, tags and new tree nodes for ``fresh`` at ``size``; extends ``rng``."""
    rows: list[tuple[Any, ...]] = []
    tag_rows: list[tuple[Any, ...]] = []
    output_rows: list[tuple[Any, ...]] = []
    leaves: list[bytes] = []
    for i, e in enumerate(fresh):
        idx = size + i
        try:
            generated: datetime = parse_time(e.generated_at)
        except ValueError as exc:
            raise DataRefused(f"record {e.record_id}: generated_at {exc}") from None
        # The log entry embeds the canonical signature JSON: store that slice rather
        # than encoding the signature a second time (this loop is per record).
        entry = log_entry(e.payload, e.signature)
        start = len(e.payload) + _SIG_START
        if entry[start - len(_SIG_KEY) : start] != _SIG_KEY:
            raise StoreError(f"record {e.record_id}: unexpected log entry layout")
        rows.append(
            (
                idx, uuid.UUID(e.record_id), e.slug, e.output_sha256, e.model,
                e.model_version, e.operation, e.status, e.actor, generated, e.payload,
                entry[start:-1].decode(),
            )
        )  # fmt: skip
        tag_rows.extend((k, v, idx) for k, v in e.tags.items())
        output_rows.extend((sha, idx) for sha in dict.fromkeys(e.outputs))
        leaves.append(hashlib.sha256(b"\x00" + entry).digest())
    node_rows: list[tuple[Any, ...]] = [(lv, ix, h) for (lv, ix), h in rng.extend(leaves)]
    return [
        ("records", _RECORD_COLUMNS, rows),
        ("tags", _TAG_COLUMNS, tag_rows),
        ("outputs", _OUTPUT_COLUMNS, output_rows),
        ("nodes", _NODE_COLUMNS, node_rows),
    ]


class _ConnNodes:
    """Node reads on the appending transaction's connection (sees its own snapshot)."""

    def __init__(self, store: PostgresStore, conn: psycopg.Connection[Any]) -> None:
        self._store = store
        self._conn = conn

    def get_nodes(self, ids: Sequence[tuple[int, int]]) -> list[bytes]:
        return _read_nodes(self._conn, ids, self._store.url)


def _read_nodes(
    conn: psycopg.Connection[Any], ids: Sequence[tuple[int, int]], where: str
) -> list[bytes]:
    if not ids:
        return []
    rows = conn.execute(
        "SELECT n.level, n.idx, n.hash FROM nodes n"
        " JOIN unnest(%s::smallint[], %s::bigint[]) AS want(level, idx)"
        " ON n.level = want.level AND n.idx = want.idx",
        ([lv for lv, _ in ids], [ix for _, ix in ids]),
    ).fetchall()
    found = {(r[0], r[1]): bytes(r[2]) for r in rows}
    try:
        return [found[node] for node in ids]
    except KeyError as exc:
        raise KeyError(f"Merkle node {exc.args[0]} is missing from {where}") from None
