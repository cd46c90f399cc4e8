"""The remote client's sender: batches to ``POST /v1/records``, journal, retries.

See :mod:`provmark.remote` for the guarantees. One background thread takes up to
``batch_size`` records (or what arrived within ``flush_interval``), finishes them
(input snapshot text, redaction) and posts them; on a transport error, 5xx or 429
the batch and everything queued behind it goes to the fsync'd journal and is
replayed with exponential backoff (capped at ``retry_max`` seconds).
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
from typing import Any

import httpx
import orjson

from ..canonical import Fragment, to_json_value
from ..capture.draft import Draft
from ..capture.drafts import finish
from ..errors import CaptureError
from .remote_journal import Journal

log = logging.getLogger("provmark.remote")

_TRANSIENT = {408, 425, 429, 500, 502, 503, 504}


class _Transient(Exception):
    """The server could not take the batch now; try again later."""


class _Fatal(Exception):
    """The server will not take the batch with this client's settings (bad token)."""


_ORJSON_OPTIONS = (
    orjson.OPT_STRICT_INTEGER  # beyond 2**53: the exact path decides how it is written
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)


def _fragment(value: Any) -> Any:
    if type(value) is Fragment:
        return orjson.Fragment(value.raw)  # canonical bytes encoded once, spliced as they are
    raise TypeError


def request_body(batch: list[dict[str, Any]]) -> bytes:
    """The JSON body of a batch: orjson, or ``json.dumps`` of the plain value.

    orjson is 5-10 times faster but writes NaN and infinities as ``null`` (a record
    changed, not refused), so a body with a ``null`` anywhere, and anything orjson
    does not encode as ``json.dumps`` would, takes the ``json.dumps`` path as before.
    """
    try:
        body = orjson.dumps(batch, default=_fragment, option=_ORJSON_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError included
        body = b"null"
    if b"null" not in body:
        return body
    return json.dumps(to_json_value(batch), separators=(",", ":"), ensure_ascii=False).encode()


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"detail": response.text[:500]}
    return body if isinstance(body, dict) else {"detail": str(body)}


class Sender:
    """Background batching, journaling and retrying of records for one server.

    ``senders`` threads each take a batch and post it, so that several requests are
    in flight: while the server signs and stores one batch, the next is already
    being parsed and validated (one at a time left both processes idle half the time).
    """

    def __init__(
        self,
        http: httpx.Client,
        journal: Journal,
        *,
        redactor: Any = None,
        batch_size: int = 500,
        flush_interval: float = 0.05,
        max_queue: int = 50_000,
        retry_max: float = 30.0,
        close_timeout: float = 10.0,
        senders: int = 2,
    ) -> None:
        self._http = http
        self.journal = journal
        self.url = str(http.base_url)
        self.redactor = redactor
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_queue = max_queue
        self.retry_max = retry_max
        self.close_timeout = close_timeout
        self.rejected: list[tuple[str, str]] = []
        self.last_error: str | None = None
        self._queue: collections.deque[Draft] = collections.deque()
        self._cond = threading.Condition()
        # held from reading the journal to clearing it, and by every append, so that a
        # batch spilled by one thread is never cleared by another thread's replay
        self._journal_lock = threading.Lock()
        self._inflight = 0
        self._closing = False
        self._closed = False
        self._fatal = False
        self._next_retry = 0.0
        self._backoff = 0.5
        self._deadline = float("inf")
        self._threads = [
            threading.Thread(target=self._run, name=f"provmark-remote-{i}", daemon=True)
            for i in range(max(1, senders))
        ]
        for t in self._threads:
            t.start()

    def submit(self, drafts: list[Draft]) -> None:
        with self._cond:
            if self._closing:
                raise CaptureError("provmark is closed; no more records are accepted")
            while len(self._queue) >= self.max_queue and not self._closing:
                self._cond.wait(0.1)  # back-pressure: block, never drop
            self._queue.extend(drafts)
            if len(self._queue) >= self.batch_size:
                self._cond.notify()

    def _take(self) -> tuple[list[Draft], bool]:
        """Wait for a batch (or the flush interval); count it in flight."""
        with self._cond:
            if not self._queue and not self._closing:
                self._cond.wait(self.flush_interval)
            elif len(self._queue) < self.batch_size and not self._closing:
                self._cond.wait_for(
                    lambda: len(self._queue) >= self.batch_size or self._closing,
                    self.flush_interval,
                )
            queue = self._queue
            batch = [queue.popleft() for _ in range(min(len(queue), self.batch_size))]
            self._inflight += len(batch)
            if queue and len(queue) >= self.batch_size:
                self._cond.notify()  # another sender can take the next batch now
            return batch, self._closing

    def _run(self) -> None:
        while True:
            drafts, closing = self._take()
            taken = len(drafts)
            batch: list[dict[str, Any]] = []  # _send drops refused records from it in place
            try:
                # off the lock: the callers' threads are not held up
                batch = [finish(draft, self.redactor) for draft in drafts]
                if self.journal.count and (closing or time.monotonic() >= self._next_retry):
                    self._replay()
                if batch:
                    if self.journal.count:  # offline: keep everything in one place
                        self._spill(batch)
                    else:
                        try:
                            self._send(batch)
                            self._backoff = 0.5
                        except (_Transient, _Fatal) as exc:
                            self._spill(batch)
                            self._failed(exc)
            except (_Transient, _Fatal) as exc:
                self._failed(exc)
                if batch:
                    self._spill(batch)
            except Exception as exc:  # never lose the batch to a bug in the loop
                log.exception("provmark remote sender")
                self.last_error = repr(exc)
                if drafts:  # a draft not finished keeps no snapshot: its raw input is unredacted
                    self._spill(batch if len(batch) == taken else [d.record for d in drafts])
            finally:
                with self._cond:
                    self._inflight -= taken
                    self._cond.notify_all()
            with self._cond:
                if self._closing and not self._queue:
                    return
                if self._closing and self.journal.count and time.monotonic() >= self._deadline:
                    rest = self._drain()
                else:
                    continue
            self._spill_drained(rest)
            return

    def _spill(self, batch: list[dict[str, Any]]) -> None:
        lines = [to_json_value(d) for d in batch]
        with self._journal_lock:
            self.journal.append(lines)

    def _drain(self) -> list[Draft]:
        """Everything queued, counted in flight (call with ``_cond`` held)."""
        rest = list(self._queue)
        self._queue.clear()
        self._inflight += len(rest)
        self._cond.notify_all()  # callers blocked by back-pressure may go on
        return rest

    def _spill_drained(self, rest: list[Draft]) -> None:
        try:
            if rest:
                self._spill([finish(d, self.redactor) for d in rest])
        finally:
            with self._cond:
                self._inflight -= len(rest)
                self._cond.notify_all()

    def _failed(self, exc: Exception) -> None:
        self.last_error = str(exc)
        self._fatal = isinstance(exc, _Fatal)
        self._next_retry = time.monotonic() + self._backoff
        log.warning(
            "provmark remote: %s; %d records kept in %s, retry in %.1fs",
            exc,
            self.journal.count,
            self.journal.path,
            self._backoff,
        )
        self._backoff = min(self.retry_max, self._backoff * 2)
        with self._cond:
            if self._closing:
                return
            rest = self._drain()
        self._spill_drained(rest)  # bound memory while the server is away

    def _replay(self) -> None:
        if not self._journal_lock.acquire(blocking=False):
            return  # another sender is replaying it
        try:
            pending = self.journal.read()
            for start in range(0, len(pending), self.batch_size):
                self._send(pending[start : start + self.batch_size])
            self.journal.clear()
        finally:
            self._journal_lock.release()
        self._backoff = 0.5
        self._fatal = False
        self.last_error = None
        log.info("provmark remote: replayed %d journaled records", len(pending))

    def _send(self, batch: list[dict[str, Any]]) -> None:
        """POST a batch until the server has stored it; drop records it calls invalid."""
        while batch:
            body = request_body(batch)
            try:
                r = self._http.post(
                    "/v1/records", content=body, headers={"content-type": "application/json"}
                )
            except httpx.HTTPError as exc:
                raise _Transient(f"server unreachable: {type(exc).__name__}: {exc}") from None
            if r.status_code < 300:
                return
            if r.status_code in _TRANSIENT:
                raise _Transient(
                    f"server answered {r.status_code}: {_problem(r).get('detail', '')}"
                )
            if r.status_code in (401, 403):
                raise _Fatal(
                    f"server refused the token ({r.status_code}): {_problem(r).get('detail', '')}"
                )
            if r.status_code == 413 and len(batch) > 1:
                half = len(batch) // 2
                self._send(batch[:half])
                batch = batch[half:]
                continue
            bad = self._invalid_indexes(r, len(batch))
            if not bad:  # an answer we cannot act on: keep the records, try later
                raise _Transient(
                    f"server answered {r.status_code}: {_problem(r).get('detail', '')}"
                )
            for i in sorted(bad, reverse=True):
                rid = str(batch[i].get("record_id"))
                self.rejected.append((rid, bad[i]))
                log.error("provmark remote: record %s rejected by the server: %s", rid, bad[i])
                del batch[i]

    @staticmethod
    def _invalid_indexes(response: httpx.Response, n: int) -> dict[int, str]:
        out: dict[int, str] = {}
        for err in _problem(response).get("errors") or []:
            field = str(err.get("field", ""))
            if field.startswith("[") and "]" in field:
                idx = field[1 : field.index("]")]
                if idx.isdigit() and int(idx) < n:
                    out[int(idx)] = f"{field}: {err.get('reason')}"
        return out

    @property
    def pending(self) -> int:
        """Records not yet acknowledged by the server (memory + in flight + journal)."""
        return len(self._queue) + self._inflight + self.journal.count

    def flush(self, timeout: float | None = 60.0) -> None:
        """Wait until the server has stored every record captured so far."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self._next_retry = 0.0  # try the server now
        with self._cond:
            self._cond.notify_all()
            while self._queue or self._inflight or self.journal.count:
                if not any(t.is_alive() for t in self._threads):
                    raise CaptureError(
                        f"the sender has stopped; {self.pending} records are in {self.journal.path}"
                    )
                if self._fatal:
                    raise CaptureError(f"{self.pending} records not stored: {self.last_error}")
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise CaptureError(
                        f"{self.pending} records not stored after {timeout}s ({self.last_error}); "
                        f"they are kept in {self.journal.path} and sent when the server is back"
                    )
                self._cond.wait(min(0.05, remaining) if remaining is not None else 0.05)

    def close(self) -> None:
        """Send what can be sent within ``close_timeout``; keep the rest in the journal."""
        if self._closed:
            return
        self._closed = True
        with self._cond:
            self._deadline = time.monotonic() + self.close_timeout
            self._closing = True
            self._next_retry = 0.0
            self._cond.notify_all()
        for t in self._threads:
            t.join(self.close_timeout + 5)
        if self.journal.count:
            log.warning(
                "provmark remote: %d records not yet stored are kept in %s; "
                "they are sent on the next open of %s",
                self.journal.count,
                self.journal.path,
                self.url,
            )
        self.journal.close()
