"""The background batching writer: sign off the caller's thread, store in batches.

``submit`` puts an unsigned record (a :class:`~provmark.capture.draft.Draft`) on a
bounded queue and returns; when the queue is full it blocks (back-pressure, never a drop). A
writer thread takes up to ``batch_size`` records or what arrived within
``flush_interval`` seconds, canonicalises and signs each, and appends the batch
to the store with one signed checkpoint in one transaction.

With ``durable=True`` every record is first appended to a journal file and
fsync'd before ``submit`` returns, so a crash (even ``kill -9``) loses nothing
that was acknowledged: the journal is replayed on the next open and record
ids make the replay idempotent.

A journal line is one prepared record (redacted, sealed, user id hashed: what will
be signed), as JSON: the journal holds nothing else, so every line replays as it is,
never prepared twice. Journals written before drafts were typed (provmark up to
issue 19) marked each line with a ``"__prepared__": true`` key inside the record;
:func:`read_lines` drops that key, so they replay the same.
"""

from __future__ import annotations

import base64
import collections
import errno
import fcntl
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from ..canonical import canonical_bytes, to_json_value
from ..capture.draft import Draft
from ..capture.drafts import render_snapshot
from ..crypto.keys import LocalSigner, Signer
from ..errors import CaptureError, DataRefused, StoreError
from ..store.base import Entry, SealFn, Store, StoredCheckpoint, index_columns
from ..store.deadletters import DeadLetterStore
from .signing_pool import Pending, Signed, SigningPool, sign_here

log = logging.getLogger("provmark.writer")

# A batch this big is worth handing to a signing process (it costs ~10 ms to start one).
_BIG_BATCH = 256


def sign_draft(draft: dict[str, Any], signer: Signer) -> Entry:
    """Canonicalise and sign one unsigned record; return the entry to store."""
    payload = canonical_bytes(draft)
    return entry_for(draft, payload, base64.b64encode(signer.sign(payload)).decode(), signer)


def entry_for(draft: dict[str, Any], payload: bytes, sig: str, signer: Signer) -> Entry:
    """The entry to store for a record whose payload was signed with ``signer``'s key."""
    signature = {"alg": signer.alg, "key_id": signer.key_id, "sig": sig}
    return Entry(
        record_id=draft["record_id"], payload=payload, signature=signature, **index_columns(draft)
    )


_OLD_MARK = "__prepared__"  # the marker of journal lines written before issue 19


def read_lines(fh: Any) -> list[Draft]:
    """The prepared drafts of a journal file; a torn last line (crash mid-write) was
    never acknowledged."""
    drafts = []
    for line in fh:
        if not line.endswith(b"\n"):
            break
        try:
            record = json.loads(line)
        except ValueError:
            break
        record.pop(_OLD_MARK, None)
        drafts.append(Draft(record, prepared=True))
    return drafts


class Journal:
    """An append-only, fsync'd file of JSON lines: records not yet committed."""

    def __init__(self, path: str | Path) -> None:
        """Opens and locks (``flock``) the file for as long as this writer lives: a journal
        whose lock can be taken was left by a dead writer (``hot_journal``).
        :class:`BlockingIOError` when a live writer holds it."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise
        self._fh = os.fdopen(fd, "ab")
        self.pending = 0
        self.remove_when_empty = False  # an extra journal beside the first one

    def append(self, record: dict[str, Any]) -> None:
        """Journal one prepared record (fsync'd before this returns)."""
        line = json.dumps(to_json_value(record), separators=(",", ":")).encode() + b"\n"
        with self._lock:
            self._fh.write(line)
            self._fh.flush()
            os.fdatasync(self._fh.fileno())
            self.pending += 1

    def committed(self, n: int) -> None:
        with self._lock:
            self.pending -= n
            if self.pending <= 0:
                self.pending = 0
                self._fh.truncate(0)
                self._fh.seek(0)
                os.fdatasync(self._fh.fileno())

    def read(self) -> list[Draft]:
        """Every complete line; a torn last line (crash mid-write) was never acknowledged."""
        with open(self.path, "rb") as fh:
            return read_lines(fh)

    def close(self) -> None:
        with self._lock:
            if self.remove_when_empty and os.fstat(self._fh.fileno()).st_size == 0:
                self.path.unlink(missing_ok=True)  # still locked: no one else reads it
            self._fh.close()


class Writer:
    """Bounded queue + one thread that signs and stores batches."""

    def __init__(
        self,
        store: Store,
        signer: Signer,
        seal: SealFn,
        *,
        batch_size: int = 2048,
        flush_interval: float = 0.05,
        max_queue: int = 50_000,
        journal: Journal | None = None,
        on_batch: Callable[[StoredCheckpoint, int], None] | None = None,
        prepare: Callable[[Draft], dict[str, Any]] = render_snapshot,
        signing_processes: int | None = None,
    ) -> None:
        self.store = store
        self.signer = signer
        self.seal = seal
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_queue = max_queue
        self.journal = journal
        self.on_batch = on_batch
        self.prepare = prepare  # a draft -> the record to sign
        # None: start a signing process when a backlog builds up; 0: never; 1: at once
        self.signing_processes = signing_processes
        self._pool: SigningPool | None = None
        self._queue: collections.deque[Draft] = collections.deque()
        self._cond = threading.Condition()
        self._submitted = 0
        self._stored = 0
        self._closing = False
        self._urgent = False
        self.failures = 0
        self.rejected: list[tuple[str, str]] = []  # (record id, reason), the last max_refused
        self.dead_letters = 0  # records this writer set aside in the store's dead letters
        self.max_store_attempts = 3
        self.max_refused = 10_000
        self._refused: collections.OrderedDict[str, str] = collections.OrderedDict()
        self.failing_since: float | None = None
        self.storage_error: str | None = None  # the store cannot write at all (disk full...)
        self._progress_at = time.monotonic()  # the last stored batch, or when work arrived
        self.last_error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="provmark-writer", daemon=True)
        self._thread.start()
        if journal is not None:
            self._replay(journal)

    # ------------------------------------------------------------ caller side
    def submit(self, draft: Draft) -> int:
        """Queue one unsigned record; returns a ticket for :meth:`wait`."""
        if self._closing:
            raise CaptureError("provmark is closed; no more records are accepted")
        self._ensure_writer()
        self._ensure_storable()
        if self.journal is not None and not draft.prepared:
            draft = Draft(self.prepare(draft), prepared=True)  # nothing unredacted reaches disk
            try:
                self.journal.append(draft.record)
            except OSError as exc:  # ENOSPC, EROFS, EIO: the caller hears it now
                raise CaptureError(
                    f"provenance not captured: journal {self.journal.path}: {exc.strerror}"
                ) from None
        with self._cond:
            while len(self._queue) >= self.max_queue and not self._closing:
                self._ensure_writer()  # never block forever on a dead writer
                self._ensure_storable()
                self._cond.wait(0.1)  # back-pressure: block (woken when a batch is taken)
            if self._submitted == self._stored:
                self._progress_at = time.monotonic()  # idle until now: not stuck
            self._queue.append(draft)
            self._submitted += 1
            if len(self._queue) == self.batch_size:  # a full batch is ready: wake the writer once
                self._cond.notify_all()
            return self._submitted

    def wait(self, ticket: int, timeout: float | None = 60.0) -> None:
        """Block until the record with this ticket (and all before it) is stored."""
        self._wait_until(ticket, timeout)

    def flush(self, timeout: float | None = 60.0) -> None:
        """Wait until every record submitted so far is stored and logged."""
        self._wait_until(self._submitted, timeout)

    def _wait_until(self, target: int, timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._stored < target:
                self._ensure_writer()
                if self.storage_error is not None:
                    raise CaptureError(
                        f"{target - self._stored} records not stored: the store cannot write "
                        f"({self.storage_error})"
                    )
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    reason = f": {self.last_error}" if self.last_error else ""
                    raise CaptureError(
                        f"{target - self._stored} records not stored after {timeout}s{reason}"
                    )
                if not self._urgent:  # someone waits: write what is queued now
                    # Only when the writer has taken the last request: waiters woken by
                    # each other's notify_all would otherwise spin (several request
                    # threads of the server waiting at once).
                    self._urgent = True
                    self._cond.notify_all()
                self._cond.wait(min(0.05, remaining) if remaining is not None else 0.05)

    def _ensure_storable(self) -> None:
        """A store that cannot write at all (full disk, read-only media) fails every
        capture at once, rather than queueing records that cannot be stored."""
        error = self.storage_error
        if error is not None:
            raise CaptureError(
                f"provenance not captured: the store cannot write ({error}); "
                f"{self.pending} captured records are waiting for it"
            )

    def _ensure_writer(self) -> None:
        if not self._thread.is_alive():
            reason = f" ({self.last_error!r})" if self.last_error is not None else ""
            raise CaptureError(f"the writer thread has stopped{reason}; records are unsaved")

    @property
    def pending(self) -> int:
        return self._submitted - self._stored

    def close(self, timeout: float | None = 60.0) -> None:
        if self._closing:
            return
        try:
            self.flush(timeout)
        finally:
            with self._cond:
                self._closing = True
                self._cond.notify_all()
            self._thread.join(timeout=5)
            if self.journal is not None:
                self.journal.close()

    # ------------------------------------------------------------ writer side
    def _replay(self, journal: Journal) -> None:
        drafts = journal.read()
        if not drafts:
            return
        stored = self.store.has([d.record_id for d in drafts])
        missing = [d for d in drafts if d.record_id not in stored]
        log.info("journal replay: %d records, %d not yet stored", len(drafts), len(missing))
        journal.pending = len(missing)
        if not missing:
            journal.committed(0)
            return
        with self._cond:
            self._queue.extend(missing)
            self._submitted += len(missing)
            self._cond.notify_all()
        self.flush()

    def requeue(self, drafts: list[Draft]) -> int:
        """Store records recovered from a dead writer's journal (already prepared) and
        wait until they are; returns how many were missing from the store."""
        stored = self.store.has([d.record_id for d in drafts])
        missing = [d for d in drafts if d.record_id not in stored]
        with self._cond:
            self._queue.extend(missing)
            self._submitted += len(missing)
            self._cond.notify_all()
        self.flush()
        return len(missing)

    def _take(self, wait: bool = True) -> list[Draft]:
        with self._cond:
            if wait:
                if not self._queue and not self._closing:
                    self._cond.wait(self.flush_interval)
                if not self._batch_ready():  # give a filling batch a moment, bounded
                    moment = self.flush_interval if self._queue else 0
                    self._cond.wait_for(self._batch_ready, moment)
            elif not self._batch_ready():
                return []  # a batch is in flight: store it rather than wait for a part batch
            self._urgent = False
            n = min(len(self._queue), self.batch_size)
            if len(self._queue) >= self.max_queue:
                self._cond.notify_all()  # producers blocked on a full queue may go on
            return [self._queue.popleft() for _ in range(n)]

    def _batch_ready(self) -> bool:
        return len(self._queue) >= self.batch_size or self._closing or self._urgent

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # a bug, not a store error: say so loudly
            self.last_error = exc
            log.critical("provmark writer stopped: %r; records not yet stored are unsaved", exc)
            with self._cond:
                self._cond.notify_all()  # producers and waiters see the dead thread
            raise

    def _loop(self) -> None:
        inflight: tuple[list[dict[str, Any]], Pending | list[Signed]] | None = None
        while True:
            taken = self._take(wait=inflight is None)
            batch = [self.prepare(draft) for draft in taken]
            signing = self._sign_async(batch) if batch else None
            if inflight is not None and not self._store_batch(*inflight):
                return
            if batch and signing is not None:
                inflight = (batch, signing)  # stored next round, while the next batch is signed
                continue
            inflight = None
            if self._closing and not self._queue:
                self._close_pool()
                return

    def _sign_async(self, batch: list[dict[str, Any]]) -> Pending | list[Signed]:
        pool = self._signing_pool(len(batch))
        if pool is not None:
            try:
                return pool.submit(batch)
            except Exception as exc:  # a broken pool: sign here from now on
                log.error("provmark writer: signing process failed (%s); signing in-process", exc)
                self._close_pool()
                self.signing_processes = 0
        return sign_here(batch, self.signer)

    def _signing_pool(self, batch: int) -> SigningPool | None:
        if self._pool is not None and self._pool.key_id != self.signer.key_id:
            self._close_pool()  # the key was rotated
        if self._pool is None and SigningPool.supports(self.signer):
            # a backlog: a queue of two batches, or one big batch (the server's ingest)
            busy = len(self._queue) >= 2 * self.batch_size or batch >= _BIG_BATCH
            if self.signing_processes or (self.signing_processes is None and busy):
                self._pool = SigningPool(cast(LocalSigner, self.signer))
        return self._pool

    def _close_pool(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def _store_batch(self, batch: list[dict[str, Any]], signing: Pending | list[Signed]) -> bool:
        try:
            signed = signing.result() if isinstance(signing, Pending) else signing
        except Exception as exc:  # the worker died mid-batch: sign this batch here
            log.error("provmark writer: signing process failed (%s); signing in-process", exc)
            self._close_pool()
            self.signing_processes = 0
            signed = sign_here(batch, self.signer)
        entries = []
        drafts: dict[str, dict[str, Any]] = {}
        for draft, (payload, sig) in zip(batch, signed, strict=True):
            if payload is None:  # not silent: dead-lettered with the reason, never "stored"
                if not self._dead_letter(draft, f"cannot be signed: {sig}"):
                    return False
            else:
                entry = entry_for(draft, payload, sig, self.signer)
                drafts[entry.record_id] = draft
                entries.append(entry)
        checkpoint = None
        if entries:
            ok, checkpoint = self._append(entries, drafts, self.max_store_attempts)
            if not ok:
                return False  # close() gave up waiting; the journal still holds them
        if self.journal is not None:
            self.journal.committed(len(batch))
        with self._cond:
            self._stored += len(batch)
            self.last_error = None
            self.failing_since = None
            self._progress_at = time.monotonic()
            self._cond.notify_all()
        if self.on_batch is not None and checkpoint is not None:
            self.on_batch(checkpoint, len(batch))
        return True

    def _append(
        self, entries: list[Entry], drafts: dict[str, dict[str, Any]], attempts: int
    ) -> tuple[bool, StoredCheckpoint | None]:
        """Store ``entries``; a passing failure (store down) is retried until it passes, a
        refusal of the data ``attempts`` times, then the batch is split in halves until
        the refused records are alone, and those are dead-lettered. (False, None) when
        ``close()`` gave up."""
        delay = 0.05
        refusals = 0
        while True:
            try:
                checkpoint = self.store.append(entries, self.seal)
                self.storage_error = None
                return True, checkpoint
            except Exception as exc:
                self.failures += 1
                self.last_error = exc
                self.storage_error = storage_failure(exc)
                if self.failing_since is None:
                    self.failing_since = time.monotonic()
                log.error("provmark writer: batch of %d not stored: %s", len(entries), exc)
                if is_refusal(exc):
                    refusals += 1
                    if refusals >= attempts:
                        return self._split(entries, drafts, exc)
                    time.sleep(0.01 * refusals)
                    continue
                if self._closing and (delay >= 2.0 or self.storage_error):
                    return False, None
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _split(
        self, entries: list[Entry], drafts: dict[str, dict[str, Any]], exc: BaseException
    ) -> tuple[bool, StoredCheckpoint | None]:
        if len(entries) == 1:
            ok = self._dead_letter(drafts[entries[0].record_id], refusal_reason(exc))
            return ok, None
        mid = len(entries) // 2
        checkpoint = None
        for half in (entries[:mid], entries[mid:]):
            # a half is tried once before it is split again; a lone record gets every attempt
            ok, cp = self._append(half, drafts, 1 if len(half) > 1 else self.max_store_attempts)
            if not ok:
                return False, None
            checkpoint = cp or checkpoint
        return True, checkpoint

    def _dead_letter(self, draft: dict[str, Any], reason: str) -> bool:
        """Set a record aside with the reason (the store's dead-letter table); the writer
        goes on with the next ones. False when ``close()`` gave up waiting for the store."""
        rid = str(draft.get("record_id", "?"))
        log.error("provmark writer: record %s dead-lettered: %s", rid, reason)
        with self._cond:
            self.rejected.append((rid, reason))
            del self.rejected[: -self.max_refused]
            self._refused[rid] = reason
            while len(self._refused) > self.max_refused:
                self._refused.popitem(last=False)
        body = json.dumps(
            to_json_value(draft),
            separators=(",", ":"),
            sort_keys=True,
            default=str,
        )  # ASCII: NUL and lone surrogates escaped, so any store takes it
        if not isinstance(self.store, DeadLetterStore):
            return True  # a store without a dead-letter table: logged and counted only
        put = self.store.add_dead_letter
        delay = 0.05
        while True:
            try:
                put(rid, reason, body)
                self.dead_letters += 1
                return True
            except Exception as exc:
                log.error("provmark writer: dead letter %s not stored: %s", rid, exc)
                if is_refusal(exc):  # the store refuses the record's text too: keep the id
                    if body.startswith('{"__unkept__"'):
                        return True  # logged and counted in ``rejected``; nothing more to try
                    body = json.dumps({"__unkept__": refusal_reason(exc), "record_id": rid})
                    continue
                if self._closing and delay >= 2.0:  # the store is down: the record waits
                    return False
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def take_refused(self, record_ids: list[str]) -> dict[str, str]:
        """Which of these records were refused (dead-lettered) and why; forgets them."""
        with self._cond:
            return {rid: self._refused.pop(rid) for rid in record_ids if rid in self._refused}

    def stuck_for(self) -> float:
        """Seconds since the writer last stored a batch while records wait (0 when none
        wait): it grows while the store fails or blocks (a held lock, a full disk)."""
        with self._cond:
            waiting = self._submitted > self._stored
            return time.monotonic() - self._progress_at if waiting else 0.0


_FULL = ("database or disk is full", "no space left on device", "disk quota exceeded",
         "could not extend file", "file too large")  # fmt: skip
_READ_ONLY = ("readonly database", "read-only file system", "read-only transaction")


def storage_failure(exc: BaseException) -> str | None:
    """What stops the store writing anything at all: a full disk or read-only media
    (the first capture after it fails with this), else None."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return f"disk full: {exc.strerror}"
    if isinstance(exc, OSError) and exc.errno == errno.EROFS:
        return f"read-only media: {exc.strerror}"
    text = str(exc).lower()
    if any(words in text for words in _FULL):
        return f"disk full: {str(exc).splitlines()[0][:300]}"
    if any(words in text for words in _READ_ONLY):
        return f"read-only: {str(exc).splitlines()[0][:300]}"
    return None


def is_refusal(exc: BaseException) -> bool:
    """Whether the store refused the data itself (retrying cannot help), rather than
    failed for a while (down, locked, full: the batch waits for it)."""
    if isinstance(exc, DataRefused | sqlite3.IntegrityError | sqlite3.DataError):
        return True
    # A missing tree node (LookupError) is damage to the store, not to a record: every
    # record would fail alike, so the batch waits (audit reports the damage). Anything
    # else (a record that breaks the code path: a bug or unforeseen data) is set aside,
    # so that one record never stops the writer.
    return not isinstance(exc, StoreError | sqlite3.Error | OSError | MemoryError | LookupError)


def refusal_reason(exc: BaseException) -> str:
    """The reason kept with a dead letter: the store's words, without where it is."""
    if isinstance(exc, DataRefused):
        return str(exc)
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:500]
