"""The ``provmark`` command: thin; parse, call the API, print, map errors to exit codes.

Exit codes: 0 success/verified, 1 not verified or a check failed, 2 usage or I/O error.
Each command group lives in its own module with a ``register(subparsers)`` function.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Sequence

from ..errors import ProvmarkError, RecordError, VerificationError
from . import (
    demo,
    disclose,
    export,
    governance,
    integrations,
    keys,
    privacy,
    records,
    serve,
    softbind,
    tokens,
    trust,
    webhooks,
    worker,
)

GROUPS = [
    records,
    keys,
    demo,
    worker,
    serve,
    tokens,
    webhooks,
    export,
    disclose,
    privacy,
    governance,
    trust,
    softbind,
    integrations,
]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_PIPE_CLOSED = 141  # 128 + SIGPIPE, what a shell reports for a writer cut off


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="provmark",
        description="Signed, tamper-evident provenance for AI-generated content.",
    )
    p.add_argument("--version", action="version", version=f"provmark {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in GROUPS:
        group.register(sub)
    _note_flags(p)
    return p


# Library parameters whose flag is not simply --the-name
FLAG_FOR = {"queue_url": "--queue"}


def _note_flags(p: argparse.ArgumentParser) -> None:
    """Give each command the set of its own flags (``args._flags``), so an error about a
    library parameter can be told as the flag the user typed."""
    flags = frozenset(o for a in p._actions for o in a.option_strings)
    p.set_defaults(_flags=flags)
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _note_flags(child)


def describe(exc: ProvmarkError, flags: frozenset[str] = frozenset()) -> str:
    """The error in the CLI's words: a library parameter named by ``field`` becomes the
    command's flag when it has one."""
    if exc.field and not isinstance(exc, RecordError):
        flag = FLAG_FOR.get(exc.field, "--" + exc.field.replace("_", "-"))
        if flag in flags:
            text = f"{flag}: {exc.message}"
            return f"{text} ({exc.hint})" if exc.hint else text
    return str(exc)


def _version() -> str:
    from .._version import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except VerificationError as exc:
        print(f"provmark: NOT VERIFIED: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except ProvmarkError as exc:
        print(
            f"provmark: error: {describe(exc, getattr(args, '_flags', frozenset()))}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except BrokenPipeError:
        # the reader went away (`provmark log | head`): stop quietly, like a tool killed by
        # SIGPIPE, and keep Python from complaining when it flushes stdout at exit
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_PIPE_CLOSED
    except (OSError, sqlite3.Error) as exc:  # I/O: read-only media, full disk, damaged file
        print(f"provmark: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def run() -> None:
    sys.exit(main())
