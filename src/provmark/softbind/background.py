"""Fingerprints at capture, on a thread of their own so the record writer never waits.

:class:`BackgroundFingerprinter` is what :func:`provmark.open` attaches (``fingerprint``
on by default): the writer thread hands it each output (:meth:`add`, a queue put), and
its own thread computes the fingerprints and writes them in batches. Outputs too short
to fingerprint are skipped before they are queued. When :data:`BACKLOG` outputs wait
(fingerprinting cannot keep up with a burst), further outputs are not fingerprinted:
they are counted (``stats()["dropped"]``) and logged, and their records are untouched;
a fingerprint is a lead for later, a record is the proof.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from typing import Any

from . import text as txt
from .fingerprinter import Fingerprinter

BACKLOG = 4096
WARN_EVERY = 10.0  # seconds between two warnings about dropped fingerprints
_WORD = re.compile(r"\w+")
_STOP = object()
log = logging.getLogger("provmark")


def too_short(content: Any) -> bool:
    """A cheap test for the common case of a short string output (no fingerprint)."""
    if not isinstance(content, str) or len(content) > 400:
        return False
    return len(_WORD.findall(content)) < txt.MIN_WORDS


class BackgroundFingerprinter:
    """A :class:`Fingerprinter` fed through a bounded queue by one worker thread."""

    def __init__(self, fingerprinter: Fingerprinter, backlog: int = BACKLOG) -> None:
        self.fingerprinter = fingerprinter
        self.store = fingerprinter.store
        self.keyed = fingerprinter.keyed
        self._queue: queue.Queue[Any] = queue.Queue(backlog)
        self._dropped = 0
        self._warned = 0.0
        self._error: str | None = None
        self._thread = threading.Thread(target=self._run, name="provmark-fingerprints", daemon=True)
        self._thread.start()

    def add(self, record_id: str, content: Any, media_type: str | None = None) -> None:
        if too_short(content):
            return
        try:
            self._queue.put_nowait((record_id, content, media_type))
        except queue.Full:
            self._dropped += 1
            now = time.monotonic()
            if now - self._warned >= WARN_EVERY:
                self._warned = now
                log.warning(
                    "provmark: %d outputs not fingerprinted so far: %d are waiting "
                    "(records are not affected)",
                    self._dropped,
                    self._queue.qsize(),
                )

    def _run(self) -> None:
        fp = self.fingerprinter
        while True:
            try:
                job = self._queue.get(timeout=fp.max_delay)
            except queue.Empty:
                self._write()
                continue
            try:
                if job is _STOP:
                    self._write()
                    return
                try:
                    fp.add(*job)
                except Exception as exc:  # a fingerprint never costs a record
                    self._error = str(exc)
                    log.warning("provmark: fingerprint of %s not stored: %s", job[0], exc)
            finally:
                self._queue.task_done()

    def _write(self) -> None:
        try:
            self.fingerprinter.flush()
        except Exception as exc:  # kept for the next try by Fingerprinter.flush
            self._error = str(exc)
            log.warning("provmark: fingerprints not written yet: %s", exc)

    def flush(self) -> None:
        """Wait until every queued output is fingerprinted and written."""
        if self._thread.is_alive():
            self._queue.join()
        self.fingerprinter.flush()

    def stats(self) -> dict[str, Any]:
        out = self.fingerprinter.stats()
        out["queued"] = self._queue.qsize()
        out["dropped"] = self._dropped
        if self._error is not None:
            out["last_error"] = self._error
        return out

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()
        self.fingerprinter.close()
