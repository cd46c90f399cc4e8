"""Journals left behind by dead writers, replayed by whoever opens the store next.

SQLite's rule for a "hot journal": any connection that opens the database and finds
a journal that no live process holds rolls it back before reading. provmark's
``durable=True`` journal is the same kind of promise: every line was acknowledged to
a caller and may not be in the store yet. So every open of a store (the library with
or without ``durable=True``, the CLI, the server) looks for its journals and replays
the ones no live writer holds.

A live writer holds an exclusive ``flock`` on its journal file for as long as it
lives; the kernel drops it when the process dies, however it dies. A journal whose
lock can be taken is therefore hot. The first writer of a store journals to
``<store>.journal`` (for a SQLite file; ``<home>/journal-<log id>.jsonl`` otherwise),
further live writers of the same store to ``<that>-1``, ``-2``...
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ProvmarkError
from .writer import Journal, Writer, read_lines

log = logging.getLogger("provmark.journal")

__all__ = ["Unreplayed", "family", "open_journal", "replay_dead_journals"]


@dataclass(frozen=True)
class Unreplayed:
    """A dead writer's journal this process could not replay (read-only store or home,
    no signing key): its records were acknowledged and are not in the store."""

    path: Path
    records: int
    reason: str


def family(primary: Path) -> list[Path]:
    """The journals of one store: ``primary`` and the extra ones beside it."""
    extra = [
        p
        for p in primary.parent.glob(primary.name + "-*")
        if p.name[len(primary.name) + 1 :].isdigit()
    ]
    return [primary, *sorted(extra, key=lambda p: int(p.name[len(primary.name) + 1 :]))]


def open_journal(primary: Path) -> Journal:
    """This writer's journal: the first of the family no live writer holds (locked)."""
    n = 0
    while True:
        path = primary if n == 0 else primary.with_name(f"{primary.name}-{n}")
        try:
            journal = Journal(path)
        except BlockingIOError:
            n += 1
            continue
        journal.remove_when_empty = n > 0
        return journal


def replay_dead_journals(
    primary: Path,
    store: Any,
    own: Journal | None,
    make_writer: Callable[[], Writer],
    *,
    can_write: bool,
    why_not: str = "",
) -> list[Unreplayed]:
    """Replay every journal of the family that no live writer holds (not ``own``) through
    a writer of its own (``make_writer``); a replayed journal is emptied (the first) or
    removed. With ``can_write`` false, or when the store fails, the journal is left as it
    is and returned as :class:`Unreplayed` (the next open tries again)."""
    left: list[Unreplayed] = []
    if not primary.parent.is_dir():
        return left
    writer: Writer | None = None
    try:
        for path in family(primary):
            if own is not None and path == own.path:
                continue  # the writer replayed its own file when it took it
            try:
                fd = os.open(path, os.O_RDWR if can_write else os.O_RDONLY)
            except FileNotFoundError:
                continue
            except OSError as exc:
                left.append(Unreplayed(path, -1, f"cannot open it: {exc.strerror}"))
                continue
            with os.fdopen(fd, "rb") as fh:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # a live writer's journal
                drafts = read_lines(fh)
                missing = len(drafts) - len(store.has([d.record_id for d in drafts]))
                if missing and not can_write:
                    left.append(Unreplayed(path, missing, why_not))
                    continue
                if missing:
                    writer = writer or make_writer()
                    try:
                        writer.requeue(drafts)
                    except ProvmarkError as exc:
                        left.append(Unreplayed(path, missing, str(exc)))
                        break  # the store cannot take them now: leave every journal as it is
                    log.warning(
                        "provmark: replayed %s left by a dead writer: %d records, %d were "
                        "not stored",
                        path,
                        len(drafts),
                        missing,
                    )
                if drafts and path == primary:
                    os.ftruncate(fd, 0)
                    os.fsync(fd)
                elif path != primary:
                    path.unlink(missing_ok=True)
    finally:
        if writer is not None:
            with contextlib.suppress(ProvmarkError):
                writer.close(timeout=0 if left else 60)
    return left
