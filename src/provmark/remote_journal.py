"""The remote client's journal: records the server has not acknowledged, fsync'd.

One file per process (``<n>.jsonl`` in a directory per server URL), held under an
exclusive ``flock``; a process that opens the directory adopts the files of
processes that died (their locks are free), so their records are sent too.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any


class Journal:
    """JSON lines of records not yet acknowledged, fsync'd once per append."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._fh: IO[bytes] | None = None
        self.path = directory / "0.jsonl"
        slots = sorted(
            (p for p in directory.glob("*.jsonl") if p.stem.isdigit()), key=lambda p: int(p.stem)
        )
        for path in slots:
            fh = _lock_slot(path, create=False)
            if fh is None:
                continue
            if self._fh is None:
                self._fh, self.path = fh, path
                data = fh.read()
                fh.truncate(len(_complete_lines(data)))  # drop a torn last line
                continue
            fh.seek(0)  # an orphan of a process that died: adopt its records
            self._fh.seek(0, os.SEEK_END)
            self._fh.write(_complete_lines(fh.read()))
            path.unlink()
            fh.close()
        n = int(slots[-1].stem) + 1 if slots else 0
        while self._fh is None:
            self.path = directory / f"{n}.jsonl"
            self._fh = _lock_slot(self.path, create=True)
            n += 1
        self._fh.flush()
        os.fdatasync(self._fh.fileno())
        self.count = len(self.read())

    def append(self, drafts: Sequence[dict[str, Any]]) -> None:
        data = b"".join(json.dumps(d, separators=(",", ":")).encode() + b"\n" for d in drafts)
        with self._lock:
            assert self._fh is not None
            self._fh.seek(0, os.SEEK_END)
            self._fh.write(data)
            self._fh.flush()
            os.fdatasync(self._fh.fileno())
            self.count += len(drafts)

    def read(self) -> list[dict[str, Any]]:
        with self._lock:
            assert self._fh is not None
            self._fh.seek(0)
            raw = _complete_lines(self._fh.read())
        return [json.loads(line) for line in raw.splitlines() if line.strip()]

    def clear(self) -> None:
        with self._lock:
            assert self._fh is not None
            self._fh.truncate(0)
            self._fh.flush()
            os.fdatasync(self._fh.fileno())
            self.count = 0

    def close(self) -> None:
        with self._lock:
            if self._fh is None:
                return
            if self.count == 0:
                self.path.unlink(missing_ok=True)  # still locked: nobody else is using it
            self._fh.close()
            self._fh = None


def _lock_slot(path: Path, *, create: bool) -> IO[bytes] | None:
    """The slot file, exclusively locked by this process, or None when another holds it."""
    try:
        fh = open(path, "ab+" if create else "rb+")  # noqa: SIM115 - held until close
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.stat(path).st_ino != os.fstat(fh.fileno()).st_ino:
            raise OSError("the slot was replaced")  # adopted and removed meanwhile
    except OSError:
        fh.close()
        return None
    return fh


def _complete_lines(data: bytes) -> bytes:
    """Whole lines only: a torn last line (crash mid-write) was never acknowledged."""
    end = data.rfind(b"\n")
    return data[: end + 1] if end >= 0 else b""
