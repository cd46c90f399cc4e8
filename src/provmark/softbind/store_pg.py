"""Fingerprints in the PostgreSQL database of the records, shared by every server on it.

:class:`PostgresFingerprintStore` keeps the same tables as the SQLite store
(``softbind_meta``, ``softbind_items``, ``softbind_bands``, ``softbind_parts``,
``softbind_codes``, one schema: ``store.STEPS``) in the provmark PostgreSQL database, as
feature tables of the record store, on its connections
(:class:`~provmark.store.features.FeatureTables`). Every server that opens
the database writes its fingerprints there and answers fuzzy lookups for all of them,
whichever server captured the record.

Image codes are searched in memory (:class:`~provmark.softbind.codes.CodeIndex`) and
topped up before each image lookup with the rows above the highest item loaded,
re-reading a window of :data:`LATE_COMMITS` items below it, because identity values
of concurrent transactions on several servers can commit out of order.

An earlier provmark kept a PostgreSQL store's fingerprints in ``softbind-<log>.db``
beside the keys; :func:`import_file` copies such a file's rows in once (they stay
readable with :mod:`.lookup_v1`).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..store.features import FeatureTables
from . import image as img
from . import text_v1
from .codes import CodeHit, CodeIndex
from .store import (
    ITEM_COLUMNS,
    PARAMS,
    PARAMS_V1,
    STEPS,
    TABLES,
    Item,
    PartHit,
    TextItem,
    _signed,
    item_row,
)

LATE_COMMITS = 10_000  # below codes.RECENT


class PostgresFingerprintStore:
    """Fingerprint tables in a provmark PostgreSQL database (see the module docstring)."""

    def __init__(self, store: FeatureTables) -> None:
        self.store = store
        self.path = None  # no file: the CLI shows ``url``
        self.url = store.where
        self._lock = threading.RLock()
        self._codes = CodeIndex()
        self._legacy: bool | None = None
        store.ensure_feature("softbind", STEPS)

    def __repr__(self) -> str:
        return f"PostgresFingerprintStore({self.url!r})"

    def _tx(self, fn: Any) -> Any:
        with self.store.transaction() as conn:
            return fn(conn)

    # ------------------------------------------------------------ write
    def check(self, key_id: str) -> None:
        def run(conn: Any) -> dict[str, str]:
            conn.execute("LOCK TABLE softbind_meta IN EXCLUSIVE MODE")
            meta = dict(conn.execute("SELECT key, value FROM softbind_meta").fetchall())
            if not meta:
                conn.execute(
                    "INSERT INTO softbind_meta VALUES ('key_id', %s), ('params', %s)",
                    (key_id, PARAMS),
                )
                meta = {"key_id": key_id, "params": PARAMS}
            if meta.get("params") == PARAMS_V1:  # rows imported from a scheme-1 file
                conn.execute("UPDATE softbind_meta SET value = %s WHERE key = 'params'", (PARAMS,))
                meta["params"] = PARAMS
            return meta

        meta = self._tx(run)
        if meta.get("key_id") != key_id:
            raise ConfigError(
                f"{self.url}: its fingerprints were made with another soft-binding key "
                f"(key id {meta.get('key_id')}, this one is {key_id}); every server on one "
                "database needs the same PROVMARK_SECRET_SOFTBIND, or clear them with "
                "'provmark fingerprint clear'"
            )
        if meta.get("params") != PARAMS:
            raise ConfigError(
                f"{self.url}: fingerprints made with other parameters ({meta.get('params')}); "
                "clear them with 'provmark fingerprint clear' and add them again"
            )

    def put(self, items: Sequence[Item]) -> None:
        if not items:
            return
        items = list({(it.record_id, it.kind): it for it in items}.values())  # the last wins
        now = time.time()

        def run(conn: Any) -> None:
            parts, bands, codes = [], [], []
            for it in items:
                _delete(conn, it.record_id, it.kind)  # a re-add replaces
                packed = np.array([p[0] for p in it.parts], dtype=np.int64).tobytes()
                (item,) = conn.execute(
                    f"INSERT INTO softbind_items ({ITEM_COLUMNS})"
                    " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) RETURNING id",
                    item_row(it, packed, now),
                ).fetchone()
                parts += [(h, item, o, k, w) for h, k, o, w in dict.fromkeys(it.parts)]
                bands += [(k, item) for k in dict.fromkeys(it.bands)]
                codes += [
                    (item, c.region, _signed(c.phash), _signed(c.dhash), c.colour) for c in it.codes
                ]
            for table, columns, rows in (
                ("softbind_parts", "hash, item, ord, kind, words", parts),
                ("softbind_bands", "key, item", bands),
                ("softbind_codes", "item, region, phash, dhash, colour", codes),
            ):
                if rows:
                    with conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)

        with self._lock:
            self._tx(run)

    def remove(self, record_id: str) -> int:
        with self._lock:
            return int(self._tx(lambda conn: _delete(conn, record_id)))

    def clear(self) -> int:
        def run(conn: Any) -> int:
            (n,) = conn.execute("SELECT count(*) FROM softbind_items").fetchone()
            conn.execute(f"TRUNCATE {', '.join(TABLES)}, softbind_meta")
            return int(n)

        with self._lock:
            n = int(self._tx(run))
            self._codes = CodeIndex()
            self._legacy = None
            return n

    # ------------------------------------------------------------ read
    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.store.connect() as conn:
            return list(conn.execute(sql, args).fetchall())

    @property
    def legacy_text(self) -> bool:
        if self._legacy is None:
            rows = self._read(
                "SELECT 1 FROM softbind_items WHERE kind = 'text' AND scheme = 1 LIMIT 1"
            )
            self._legacy = bool(rows)
        return self._legacy

    def band_hits(self, keys: Sequence[int]) -> dict[int, int]:
        if not keys:
            return {}
        rows = self._read(
            "SELECT item, count(*) FROM softbind_bands WHERE key = ANY(%s) GROUP BY item",
            (list(keys),),
        )
        return {int(i): int(n) for i, n in rows}

    def part_hits(self, hashes: Sequence[int]) -> list[PartHit]:
        if not hashes:
            return []
        rows = self._read(
            "SELECT hash, item, ord, kind, words FROM softbind_parts WHERE hash = ANY(%s)",
            (list(dict.fromkeys(hashes)),),
        )
        return [PartHit(*r) for r in rows]

    def text_items(self, ids: Iterable[int]) -> dict[int, TextItem]:
        wanted = list(ids)
        if not wanted:
            return {}
        rows = self._read(
            "SELECT id, record_id, shingles, size, signature, scheme, anchors"
            " FROM softbind_items WHERE id = ANY(%s) AND kind = 'text'",
            (wanted,),
        )
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
        rows = self._read("SELECT id, record_id FROM softbind_items WHERE id = ANY(%s)", (wanted,))
        return {int(i): str(r) for i, r in rows}

    def _sync_codes(self) -> None:
        since = max(0, self._codes.loaded_item - LATE_COMMITS)
        rows = self._read(
            "SELECT c.item, c.region, c.phash, c.dhash, c.colour, i.width, i.height"
            " FROM softbind_codes c JOIN softbind_items i ON i.id = c.item"
            " WHERE c.item > %s ORDER BY c.item",
            (since,),
        )
        if rows and since:
            seen = self._codes.recent(since)
            rows = [r for r in rows if r[0] not in seen]
        self._codes.add(rows)

    def code_hits(self, probes: Sequence[img.Probe]) -> list[CodeHit]:
        if not probes:
            return []
        with self._lock:
            self._sync_codes()
            return self._codes.search(probes)

    # ------------------------------------------------------------ maintenance
    def items_of(self, record_id: str) -> list[dict[str, Any]]:
        rows = self._read(
            "SELECT id, kind, media_type, size, shingles, width, height, length(parts) / 8,"
            " cost_us, created_at, scheme, anchors FROM softbind_items WHERE record_id = %s"
            " ORDER BY id",
            (record_id,),
        )
        keys: tuple[str, ...] = ("item", "kind", "media_type", "size", "shingles", "width")
        keys += ("height", "parts", "cost_us", "created_at", "scheme", "anchors")
        return [{k: v for k, v in zip(keys, r, strict=True) if v is not None} for r in rows]

    def record_ids(self) -> Iterator[str]:
        for (rid,) in self._read("SELECT DISTINCT record_id FROM softbind_items"):
            yield str(rid)

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"params": PARAMS, "kinds": {}}
        meta = dict(self._read("SELECT key, value FROM softbind_meta"))
        out["key_id"] = meta.get("key_id")
        for kind, n, p50, p99 in self._read(
            "SELECT kind, count(*), percentile_disc(0.5) WITHIN GROUP (ORDER BY cost_us),"
            " percentile_disc(0.99) WITHIN GROUP (ORDER BY cost_us)"
            " FROM softbind_items GROUP BY kind ORDER BY kind"
        ):
            out["kinds"][kind] = {"items": n, "cost_p50_ms": p50 / 1000, "cost_p99_ms": p99 / 1000}
        out["rows"] = {t: self._read(f"SELECT count(*) FROM {t}")[0][0] for t in TABLES}
        sizes = self._read(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c"
            " WHERE c.relname = ANY(%s) AND c.relkind = 'r'",
            ([*TABLES, "softbind_meta"],),
        )
        out["bytes"] = int(sizes[0][0] or 0)
        return out

    def close(self) -> None:
        """Nothing of its own to close: the record store owns the connections."""


def _delete(conn: Any, record_id: str, kind: str | None = None) -> int:
    sql = "SELECT id, signature, parts, scheme FROM softbind_items WHERE record_id = %s"
    args: tuple[str, ...] = (record_id,)
    if kind is not None:
        sql += " AND kind = %s"
        args = (record_id, kind)
    rows = conn.execute(sql, args).fetchall()
    for item, signature, packed, scheme in rows:
        if signature is not None and scheme == 1:
            keys = text_v1.band_keys(np.frombuffer(signature, dtype="<u4"))
            conn.execute(
                "DELETE FROM softbind_bands WHERE key = ANY(%s) AND item = %s", (keys, item)
            )
        hashes = np.frombuffer(packed, dtype=np.int64).tolist()
        conn.execute(
            "DELETE FROM softbind_parts WHERE hash = ANY(%s) AND item = %s", (hashes, item)
        )
        conn.execute("DELETE FROM softbind_codes WHERE item = %s", (item,))
        conn.execute("DELETE FROM softbind_items WHERE id = %s", (item,))
    return len(rows)


def import_file(target: PostgresFingerprintStore, path: Path) -> int:
    """Copy the rows of a fingerprint file an earlier provmark kept beside the keys into
    the database (once: the file is renamed ``*.imported``); returns the items copied."""
    src = sqlite3.connect(path)
    try:
        meta = dict(src.execute("SELECT key, value FROM softbind_meta").fetchall())
        columns = {r[1] for r in src.execute("PRAGMA table_info(softbind_items)")}
        scheme = "scheme, anchors" if "scheme" in columns else "1, NULL"
        items = src.execute(
            "SELECT id, record_id, kind, media_type, size, shingles, width, height, signature,"
            f" parts, cost_us, created_at, {scheme} FROM softbind_items ORDER BY id"
        ).fetchall()
        bands = src.execute("SELECT key, item FROM softbind_bands").fetchall()
        parts = src.execute("SELECT hash, item, ord, kind, words FROM softbind_parts").fetchall()
        codes = src.execute("SELECT item, region, phash, dhash, colour FROM softbind_codes")
        code_rows = codes.fetchall()
    finally:
        src.close()

    def run(conn: Any) -> int:
        have = dict(conn.execute("SELECT key, value FROM softbind_meta").fetchall())
        if have and have.get("key_id") != meta.get("key_id"):
            raise ConfigError(f"{path}: made with another soft-binding key than {target.url}")
        if not have and meta:
            conn.execute(
                "INSERT INTO softbind_meta VALUES ('key_id', %s), ('params', %s)",
                (meta.get("key_id"), PARAMS),
            )
        new_id: dict[int, int] = {}
        for old, *row in items:
            _delete(conn, row[0], row[1])
            (new_id[old],) = conn.execute(
                f"INSERT INTO softbind_items ({ITEM_COLUMNS})"
                " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) RETURNING id",
                row,
            ).fetchone()
        for table, columns, rows, at in (
            ("softbind_bands", "key, item", bands, 1),
            ("softbind_parts", "hash, item, ord, kind, words", parts, 1),
            ("softbind_codes", "item, region, phash, dhash, colour", code_rows, 0),
        ):
            with conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for r in rows:
                    if r[at] in new_id:
                        copy.write_row((*r[:at], new_id[r[at]], *r[at + 1 :]))
        return len(new_id)

    with target._lock:
        n = int(target._tx(run))
        target._legacy = None
    path.rename(path.with_name(path.name + ".imported"))
    return n
