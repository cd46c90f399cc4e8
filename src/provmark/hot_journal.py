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

import fcntl
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from .ingest import Journal, Writer, read_lines

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
    primary: Path, writer: Writer, own: Journal | None, *, can_write: bool, why_not: str = ""
) -> list[Unreplayed]:
    """Replay every journal of the family that no live writer holds (not ``own``) through
    ``writer``; a replayed journal is emptied (the first) or removed. With ``can_write``
    false nothing is touched and the hot journals are returned as :class:`Unreplayed`."""
    left: list[Unreplayed] = []
    if not primary.parent.is_dir():
        return left
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
            if not drafts:
                continue
            if not can_write:
                missing = len(drafts) - len(writer.store.has([d["record_id"] for d in drafts]))
                if missing:
                    left.append(Unreplayed(path, missing, why_not))
                continue
            replayed = writer.requeue(drafts)
            log.warning(
                "provmark: replayed %s left by a dead writer: %d records, %d were not stored",
                path,
                len(drafts),
                replayed,
            )
            if path == primary:
                os.ftruncate(fd, 0)
                os.fsync(fd)
            else:
                path.unlink(missing_ok=True)
    return left
