"""The largest verified checkpoint of every log this home has seen: rollback detection.

A store can lose confirmed records without any row being altered: a deleted SQLite
``-wal`` file, a file copied back from last week, a truncated or replaced file, a
PostgreSQL database restored from an old dump. What is left is a smaller log that
is perfectly consistent with itself, so an audit of the store alone says OK. Like
Go's checksum-database client, which caches the latest tree it saw, provmark keeps
in ``$PROVMARK_HOME/checkpoints/`` the largest signed checkpoint it has verified for
each log origin, and on every open, verify and audit requires the store's latest
checkpoint to be at least as large and consistent with it (RFC 9162 consistency
proof from the store's own tree). For a SQLite file it also remembers which origin
lived at that path, so a file replaced by a new empty store is noticed too.

Everything here is best effort on the writing side: a read-only home is never
written, and losing the folder only loses the protection, never data.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import VerificationError
from ..store.base import Store
from ..store.features import StoreFile
from .merkle import consistency_proof, verify_consistency
from .note import Checkpoint, NoteVerifier, open_checkpoint

__all__ = ["CheckpointMemory", "Problem"]


@dataclass(frozen=True)
class Problem:
    """What the store lost: ``rollback`` (smaller than seen), ``fork`` (inconsistent with
    what was seen) or ``replaced`` (another log at this path)."""

    kind: str
    detail: str


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class CheckpointMemory:
    """``<home>/checkpoints/<digest of origin>.note`` (a signed checkpoint note) and
    ``<home>/checkpoints/path-<digest of path>.json`` (the origin last seen in a file)."""

    def __init__(self, home: Path) -> None:
        self.directory = home / "checkpoints"
        self._last_write = 0.0

    def note_path(self, origin: str) -> Path:
        return self.directory / f"{_digest(origin)}.note"

    def _path_file(self, store_path: Path) -> Path:
        return self.directory / f"path-{_digest(str(store_path.resolve()))}.json"

    # ------------------------------------------------------------ read
    def seen(self, origin: str, verifier: NoteVerifier) -> tuple[Checkpoint, str] | None:
        """The remembered checkpoint of ``origin`` (its signature checked), or None."""
        try:
            note = self.note_path(origin).read_text()
        except (OSError, UnicodeDecodeError):
            return None
        try:
            checkpoint, _ = open_checkpoint(note, [verifier], origin=origin)
        except VerificationError:
            return None  # not signed by this log's key: an unrelated log of the same name
        return checkpoint, note

    def _seen_at(self, store_path: Path) -> dict[str, Any] | None:
        try:
            data = json.loads(self._path_file(store_path).read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def check(self, store: Store, verifier: NoteVerifier) -> list[Problem]:
        """Compare the store with what this home has seen of its log."""
        problems: list[Problem] = []
        path = store.path if isinstance(store, StoreFile) else None
        if path is not None:
            before = self._seen_at(path)
            if before and before.get("origin") != store.origin:
                problems.append(
                    Problem(
                        "replaced",
                        f"{path} held the log {before.get('origin')} ({before.get('size')} "
                        f"records seen); it now holds {store.origin}. If that was on purpose, "
                        f"delete {self._path_file(path)}",
                    )
                )
        seen = self.seen(store.origin, verifier)
        if seen is None:
            return problems
        old, _ = seen
        latest = store.latest_checkpoint()
        size = latest.size if latest is not None else 0
        if size < old.size:
            problems.append(
                Problem(
                    "rollback",
                    f"the log has {size} records but a checkpoint of {old.size} was verified "
                    f"before ({self.note_path(store.origin)}): {old.size - size} confirmed "
                    "records are gone (deleted -wal file, restored old copy, truncation?)",
                )
            )
            return problems
        assert latest is not None
        try:
            new, _ = open_checkpoint(latest.note, [verifier], origin=store.origin)
        except VerificationError:
            return problems  # a forged checkpoint: what verify and audit report themselves
        try:
            proof = consistency_proof(old.size, new.size, store)
            verify_consistency(old.size, new.size, old.root_hash, new.root_hash, proof)
        except (VerificationError, KeyError) as exc:
            detail = exc.detail if isinstance(exc, VerificationError) else str(exc)
            problems.append(
                Problem(
                    "fork",
                    f"the log of {latest.size} records is not an extension of the "
                    f"checkpoint of {old.size} verified before: {detail}",
                )
            )
        return problems

    # ------------------------------------------------------------ write
    def remember(self, store: Store, verifier: NoteVerifier, *, every: float = 0.0) -> None:
        """Keep the store's latest checkpoint if it is larger than the one remembered and
        consistent with it; ``every`` limits how often the files are written (seconds)."""
        if every and time.monotonic() - self._last_write < every:
            return
        latest = store.latest_checkpoint()
        if latest is None:
            return
        try:
            new, _ = open_checkpoint(latest.note, [verifier], origin=store.origin)
        except VerificationError:
            return
        if self.check(store, verifier):
            return  # never paper over a rollback or a fork
        seen = self.seen(store.origin, verifier)
        self._last_write = time.monotonic()
        try:
            if seen is None or new.size > seen[0].size:
                _write(self.note_path(store.origin), latest.note)
            path = store.path if isinstance(store, StoreFile) else None
            if path is not None:
                before = self._seen_at(path) or {}
                if before.get("origin") != store.origin or before.get("size", 0) < new.size:
                    body = {"path": str(path.resolve()), "origin": store.origin, "size": new.size}
                    _write(self._path_file(path), json.dumps(body) + "\n")
        except OSError:
            pass  # a read-only or full home: the protection is lost, nothing else

    def forget(self, origin: str, store_path: Path | None = None) -> None:
        """Accept a log's present state (after a deliberate restore of an older copy)."""
        self.note_path(origin).unlink(missing_ok=True)
        if store_path is not None:
            self._path_file(store_path).unlink(missing_ok=True)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(exist_ok=True, mode=0o700)  # inside an existing home, never makes one
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)
