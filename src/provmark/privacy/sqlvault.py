"""The vault logic over any SQL database: data keys, field ciphertexts, erasure and the
hash-chained access log. :mod:`provmark.privacy.vault` puts it on SQLite and PostgreSQL.

Statements use ``?`` parameters; a backend supplies transactions (:class:`Cursor`) and
reads. Schema (no plaintext anywhere; subjects only as ``hmac-sha256:<hex>``):

``pm_subject_keys``  key_id, subject, master_key_id, wrapped (NULL once erased),
                     created_at, erased_at, erase_reason
``pm_ciphertexts``   (record_id, path) -> key_id, ciphertext, created_at
``pm_access_log``    seq, at, principal, role, action, record_id, fields, reason, chain
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from ..crypto.fieldenc import (
    MasterKey,
    decode_value,
    decrypt_field,
    encrypt_field,
    new_data_key,
    wrap_aad,
)
from ..errors import KeyStoreError, VerificationError
from ..record import now_utc
from .base import (
    AccessEntry,
    AccessRequest,
    Erasure,
    KeyInfo,
    Plaintext,
    Revealed,
    Status,
)

__all__ = ["DDL", "Cursor", "SqlVault"]

T = TypeVar("T")
_CHUNK = 400
_KEY_CACHE = 4096

DDL = (
    """CREATE TABLE IF NOT EXISTS pm_subject_keys (
        key_id TEXT PRIMARY KEY, subject TEXT NOT NULL, master_key_id TEXT NOT NULL,
        wrapped {blob}, created_at TEXT NOT NULL, erased_at TEXT, erase_reason TEXT)""",
    "CREATE INDEX IF NOT EXISTS pm_subject_keys_subject ON pm_subject_keys(subject)",
    """CREATE TABLE IF NOT EXISTS pm_ciphertexts (
        record_id TEXT NOT NULL, path TEXT NOT NULL, key_id TEXT NOT NULL,
        ciphertext {blob} NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (record_id, path))""",
    "CREATE INDEX IF NOT EXISTS pm_ciphertexts_key ON pm_ciphertexts(key_id)",
    """CREATE TABLE IF NOT EXISTS pm_access_log (
        seq {serial}, at TEXT NOT NULL, principal TEXT NOT NULL, role TEXT NOT NULL,
        action TEXT NOT NULL, record_id TEXT, fields TEXT NOT NULL, reason TEXT,
        chain TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS pm_access_log_record ON pm_access_log(record_id)",
)


class Cursor(Protocol):
    """The three calls the vault logic needs from a database connection (``?`` params)."""

    def execute(self, sql: str, args: Sequence[Any] = ()) -> None: ...

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...


def _chain(prev: str, req: AccessRequest, at: str) -> str:
    body = json.dumps(
        [at, req.principal, req.role, req.action, req.record_id, list(req.fields), req.reason],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(f"{prev}\n{body}".encode("utf-8", "surrogatepass")).hexdigest()


class SqlVault:
    """The vault logic over any SQL database; subclasses supply connections."""

    def __init__(self, master: MasterKey) -> None:
        self._master = master
        self._cache: OrderedDict[str, tuple[bytes, bytes]] = OrderedDict()  # id -> wrapped, key
        self._cache_lock = threading.Lock()

    @property
    def master_key_id(self) -> str:
        return self._master.key_id

    @property
    def master(self) -> MasterKey:
        """The master key wrapping this vault's data keys (the server seals its webhook
        secrets under it too)."""
        return self._master

    # -- backend hooks
    def _transaction(self, fn: Callable[[Cursor], T]) -> T:
        raise NotImplementedError

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _scrub(self) -> bool:
        raise NotImplementedError

    def _lock_access_log(self, cur: Cursor) -> None:
        """Serialise access-log appends across processes (SQLite: the write lock does)."""

    def close(self) -> None:
        with self._cache_lock:
            self._cache.clear()

    # -- data keys
    def _unwrap(self, key_id: str, subject: str, wrapped: bytes) -> bytes:
        with self._cache_lock:
            hit = self._cache.get(key_id)
            if hit is not None and hit[0] == wrapped:
                self._cache.move_to_end(key_id)
                return hit[1]
        key = self._master.unwrap(wrapped, wrap_aad(key_id, subject))
        self._remember(key_id, wrapped, key)
        return key

    def _remember(self, key_id: str, wrapped: bytes, key: bytes) -> None:
        with self._cache_lock:
            self._cache[key_id] = (wrapped, key)
            while len(self._cache) > _KEY_CACHE:
                self._cache.popitem(last=False)

    def _active_keys(self, cur: Cursor, subjects: list[str]) -> dict[str, tuple[str, bytes]]:
        """subject -> (key_id, data key) under this master key; created where missing."""
        found: dict[str, tuple[str, bytes]] = {}
        for start in range(0, len(subjects), _CHUNK):
            chunk = subjects[start : start + _CHUNK]
            rows = cur.query(
                "SELECT subject, key_id, wrapped FROM pm_subject_keys WHERE master_key_id = ?"
                f" AND wrapped IS NOT NULL AND subject IN ({','.join('?' * len(chunk))})"
                " ORDER BY created_at, key_id",
                [self._master.key_id, *chunk],
            )
            for subject, key_id, wrapped in rows:
                if subject not in found:
                    found[subject] = (key_id, self._unwrap(key_id, subject, bytes(wrapped)))
        now = now_utc()
        for subject in subjects:
            if subject in found:
                continue
            key_id = uuid.uuid4().hex
            key = new_data_key()
            wrapped = self._master.wrap(key, wrap_aad(key_id, subject))
            cur.execute(
                "INSERT INTO pm_subject_keys (key_id, subject, master_key_id, wrapped, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (key_id, subject, self._master.key_id, wrapped, now),
            )
            self._remember(key_id, wrapped, key)
            found[subject] = (key_id, key)
        return found

    # -- fields
    def put(self, items: Sequence[Plaintext]) -> None:
        if not items:
            return

        def tx(cur: Cursor) -> None:
            active = self._active_keys(cur, sorted({i.subject for i in items}))
            now = now_utc()
            rows = []
            for it in items:
                key_id, key = active[it.subject]
                sealed = encrypt_field(key, it.record_id, it.path, it.data)
                rows.append((it.record_id, it.path, key_id, sealed, now))
            cur.executemany(
                "INSERT INTO pm_ciphertexts (record_id, path, key_id, ciphertext, created_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (record_id, path) DO NOTHING",
                rows,
            )

        self._transaction(tx)

    def reveal(self, fields: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Revealed]:
        wanted = set(fields)
        ids = sorted({rid for rid, _ in wanted})
        rows: dict[tuple[str, str], tuple[Any, ...]] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            for row in self._query(
                "SELECT c.record_id, c.path, c.ciphertext, c.key_id, k.subject,"
                " k.master_key_id, k.wrapped FROM pm_ciphertexts c"
                " LEFT JOIN pm_subject_keys k ON k.key_id = c.key_id"
                f" WHERE c.record_id IN ({','.join('?' * len(chunk))})",
                chunk,
            ):
                if (row[0], row[1]) in wanted:
                    rows[(row[0], row[1])] = row
        out: dict[tuple[str, str], Revealed] = {}
        for rid, path in fields:  # any failure raises before anything is returned
            found = rows.get((rid, path))
            if found is None:
                out[(rid, path)] = Revealed(rid, path, Status.MISSING)
                continue
            _, _, ciphertext, key_id, subject, master_id, wrapped = found
            if wrapped is None:
                out[(rid, path)] = Revealed(rid, path, Status.ERASED, subject=subject)
                continue
            if master_id != self._master.key_id:
                raise KeyStoreError(
                    f"the data key of record {rid} field {path} is wrapped by master key "
                    f"{master_id}; this key store's master key is {self._master.key_id} "
                    "(wrong PROVMARK_HOME or PROVMARK_SECRET_MASTER?)"
                )
            key = self._unwrap(key_id, subject, bytes(wrapped))
            plain = decrypt_field(key, rid, path, bytes(ciphertext))
            out[(rid, path)] = Revealed(rid, path, Status.DECRYPTED, decode_value(plain), subject)
        return out

    # -- erasure
    def erase(self, subject: str, reason: str | None = None) -> Erasure:
        now = now_utc()

        def tx(cur: Cursor) -> tuple[int, bool]:
            live = cur.query(
                "SELECT key_id, wrapped, master_key_id, created_at FROM pm_subject_keys"
                " WHERE subject = ? AND wrapped IS NOT NULL",
                (subject,),
            )
            before = cur.query(
                "SELECT 1 FROM pm_subject_keys WHERE subject = ? AND wrapped IS NULL LIMIT 1",
                (subject,),
            )
            for key_id, wrapped, master_id, created in live:
                # Overwrite in place, then delete; a tombstone row keeps "erased" answerable.
                cur.execute(
                    "UPDATE pm_subject_keys SET wrapped = ? WHERE key_id = ?",
                    (bytes(len(bytes(wrapped))), key_id),
                )
                cur.execute("DELETE FROM pm_subject_keys WHERE key_id = ?", (key_id,))
                cur.execute(
                    "INSERT INTO pm_subject_keys (key_id, subject, master_key_id, wrapped,"
                    " created_at, erased_at, erase_reason) VALUES (?, ?, ?, NULL, ?, ?, ?)",
                    (key_id, subject, master_id, created, now, reason),
                )
            if not live and not before:  # nothing stored yet: remember the erasure anyway
                cur.execute(
                    "INSERT INTO pm_subject_keys (key_id, subject, master_key_id, wrapped,"
                    " created_at, erased_at, erase_reason) VALUES (?, ?, ?, NULL, ?, ?, ?)",
                    ("erased-" + uuid.uuid4().hex, subject, self._master.key_id, now, now, reason),
                )
            return len(live), bool(before) and not live

        shredded, already = self._transaction(tx)
        with self._cache_lock:
            for key_id in [k for k, _ in self._cache.items()]:
                self._cache.pop(key_id, None)  # cheap: the cache refills on the next read
        scrubbed = self._scrub() if shredded else True
        return Erasure(subject, shredded, already, scrubbed, now)

    def keys(self, subject: str | None = None, limit: int = 100) -> list[KeyInfo]:
        where, args = ("WHERE k.subject = ?", [subject]) if subject else ("", [])
        rows = self._query(
            "SELECT k.key_id, k.subject, k.master_key_id, k.created_at, k.erased_at,"
            " k.erase_reason, (SELECT COUNT(*) FROM pm_ciphertexts c WHERE c.key_id = k.key_id)"
            f" FROM pm_subject_keys k {where} ORDER BY k.created_at DESC, k.key_id LIMIT ?",
            [*args, limit],
        )
        return [KeyInfo(r[0], r[1], r[2], r[3], r[4], r[5], int(r[6])) for r in rows]

    # -- access log
    def log_access(self, requests: Sequence[AccessRequest]) -> None:
        if not requests:
            return

        def tx(cur: Cursor) -> None:
            self._lock_access_log(cur)
            last = cur.query("SELECT chain FROM pm_access_log ORDER BY seq DESC LIMIT 1")
            prev = str(last[0][0]) if last else ""
            at = now_utc()
            rows = []
            for req in requests:
                prev = _chain(prev, req, at)
                fields = json.dumps(list(req.fields), ensure_ascii=False)
                rows.append(
                    (
                        at,
                        req.principal,
                        req.role,
                        req.action,
                        req.record_id,
                        fields,
                        req.reason,
                        prev,
                    )
                )
            cur.executemany(
                "INSERT INTO pm_access_log (at, principal, role, action, record_id, fields,"
                " reason, chain) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

        self._transaction(tx)

    def access_log(
        self,
        *,
        record_id: str | None = None,
        principal: str | None = None,
        since: str | None = None,
        limit: int = 100,
    ) -> list[AccessEntry]:
        where: list[str] = []
        args: list[Any] = []
        for clause, value in (
            ("record_id = ?", record_id),
            ("principal = ?", principal),
            ("at >= ?", since),
        ):
            if value is not None:
                where.append(clause)
                args.append(value)
        sql = "SELECT seq, at, principal, role, action, record_id, fields, reason, chain"
        sql += " FROM pm_access_log" + (" WHERE " + " AND ".join(where) if where else "")
        rows = self._query(sql + " ORDER BY seq DESC LIMIT ?", [*args, limit])
        return [_entry(r) for r in rows]

    def verify_access_log(self) -> int:
        prev, count, after = "", 0, -1
        while True:
            rows = self._query(
                "SELECT seq, at, principal, role, action, record_id, fields, reason, chain"
                " FROM pm_access_log WHERE seq > ? ORDER BY seq LIMIT 2000",
                (after,),
            )
            if not rows:
                return count
            for r in rows:
                e = _entry(r)
                req = AccessRequest(e.principal, e.role, e.action, e.record_id, e.fields, e.reason)
                if _chain(prev, req, e.at) != e.chain:
                    raise VerificationError(
                        "access_log", f"entry {e.seq} was altered, or an entry before it removed"
                    )
                prev, count, after = e.chain, count + 1, e.seq


def _entry(r: tuple[Any, ...]) -> AccessEntry:
    return AccessEntry(
        int(r[0]), r[1], r[2], r[3], r[4], r[5], tuple(json.loads(r[6])), r[7], str(r[8])
    )
