"""Options and printing shared by the command modules."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..client import Provmark, open
from ..errors import ConfigError
from ..protocol import ProvenanceClient


def parse_tags(items: list[str]) -> dict[str, str]:
    """``--tag KEY=VALUE`` options as a dict; a malformed one is a ConfigError naming it."""
    tags = {}
    for t in items:
        key, sep, value = t.partition("=")
        if not sep:
            raise ConfigError(f"--tag {t!r}: use KEY=VALUE")
        tags[key] = value
    return tags


def add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        metavar="TARGET",
        help="SQLite file, postgresql:// or http(s):// URL "
        "(default: $PROVMARK_DB, $PROVMARK_DATABASE_URL, ./provmark.db)",
    )
    p.add_argument(
        "--home", metavar="DIR", help="keys and config (default: $PROVMARK_HOME or ~/.provmark)"
    )
    p.add_argument("--token", help="API token for an http(s):// target (or $PROVMARK_TOKEN)")


def open_from(args: argparse.Namespace, **options: Any) -> ProvenanceClient:
    """The store named by --db (or the environment). A SQLite file must exist: a
    command never creates an empty database (and keys) by accident in the wrong folder."""
    import os
    from pathlib import Path

    from ..store.targets import resolve_target

    target = resolve_target(args.db)
    if "://" not in target and not Path(target).exists():
        raise ConfigError(
            f"no provmark database at {target}: give --db, set PROVMARK_DB, "
            "or capture something first (provmark.open creates it)"
        )
    token = getattr(args, "token", None) or os.environ.get("PROVMARK_TOKEN")
    return open(target, home=args.home, token=token, **options)


def open_store_from(
    args: argparse.Namespace, *, server_hint: str | None = None, **options: Any
) -> Provmark:
    """:func:`open_from` for commands that work on the store itself (not over a server);
    ``server_hint`` says what to use against a server instead."""
    from ..store.targets import resolve_target

    target = resolve_target(args.db)
    if target.startswith(("http://", "https://")):
        raise ConfigError(
            f"{target} is a provmark server; this command works on the store itself",
            field="db",
            hint=server_hint or "give the SQLite file or the postgresql:// URL of the store",
        )
    pm = open_from(args, **options)
    assert isinstance(pm, Provmark)
    return pm


def print_json(obj: Any, *, lines: bool = False) -> None:
    if lines:
        sys.stdout.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")
    else:
        sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=2) + "\n")


class Progress:
    """A one-line progress bar on stderr (only when stderr is a terminal or forced)."""

    def __init__(self, label: str, force: bool = False) -> None:
        self.label = label
        self.enabled = force or sys.stderr.isatty()

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total <= 0:
            return
        width = 30
        filled = int(width * done / total)
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def read_content(args: argparse.Namespace) -> tuple[Any, str]:
    """The content a command checks: ``--text``, a FILE (as a Path) or ``-`` (stdin bytes)."""
    from pathlib import Path

    if args.text is not None:
        return args.text, "text"
    if not args.file:
        raise ConfigError("give a FILE, - for standard input, or --text TEXT")
    if args.file == "-":
        return sys.stdin.buffer.read(), "standard input"
    path = Path(args.file)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    return path, str(path)
