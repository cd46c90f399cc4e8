"""I-JSON limits (RFC 7493) every record meets before provmark accepts it.

A record is signed over its RFC 8785 bytes and stored in SQLite or PostgreSQL.
Some JSON values survive neither exactly: NaN and the infinities are not JSON,
an integer past 2^53 is not an IEEE-754 double (RFC 8785 would change it or
refuse it), a NUL character cannot be stored in a PostgreSQL text column, a lone
surrogate is not UTF-8, and deep nesting exhausts parsers. :func:`check_json`
refuses each of them, naming the field, so that provmark never answers
"stored" for a record it would store changed, or not at all.

The same check runs wherever a record comes in: ``Provmark.ingest`` (the server's
batch API, queue mode on publish and in the worker) and capture (parameters,
extra fields, tags and the actor). Every value it accepts is one the writer's
canonical encoder (:func:`provmark.canonical.canonical_bytes`) encodes exactly.
"""

from __future__ import annotations

import enum
import re
import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from .errors import RecordError

MAX_SAFE_INTEGER = 2**53 - 1
"""I-JSON's interoperable integers are -(2^53 - 1) .. 2^53 - 1; larger ones go as strings."""
MAX_DEPTH = 32
"""Objects and arrays nested in one record (a record itself is 3-4 levels deep)."""

_BAD_CHAR = re.compile("[\x00\ud800-\udfff]")


def string_problem(text: str) -> str | None:
    """Why a string cannot be stored exactly, or None."""
    found = _BAD_CHAR.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character (U+0000), which stores cannot hold; remove it"
    return f"contains a lone surrogate (U+{ord(found.group()):04X}), which is not UTF-8"


def replace_unstorable(text: str) -> str:
    """``text`` with each NUL and lone surrogate replaced by U+FFFD (for renderings)."""
    return _BAD_CHAR.sub("\ufffd", text) if _BAD_CHAR.search(text) else text


def check_json(value: Any, path: str = "", *, max_depth: int = MAX_DEPTH) -> None:
    """Refuse ``value`` with ``RecordError(field, reason)`` unless it is exact I-JSON.

    Iterative (no recursion), so a hostile document nested 100,000 deep is refused
    cheaply instead of exhausting the stack.
    """
    if not _plainly_fine(value, max_depth):
        walk(value, path, max_depth)


def walk(value: Any, path: str = "", max_depth: int = MAX_DEPTH) -> None:
    """The exact check of :func:`check_json`, value by value (its slow path)."""
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        obj, where, depth = stack.pop()
        if obj is None or obj is True or obj is False:
            continue
        t = type(obj)
        if t is str or isinstance(obj, str):
            problem = string_problem(obj)
            if problem is not None:
                raise RecordError(where or "<record>", problem)
        elif t is int or (isinstance(obj, int) and not isinstance(obj, bool)):
            if not -MAX_SAFE_INTEGER <= obj <= MAX_SAFE_INTEGER:
                raise RecordError(
                    where or "<record>",
                    f"integer {_short(obj)} is outside +-(2^53 - 1), the I-JSON range that "
                    "signatures and stores keep exactly; send it as a string",
                )
        elif t is float or isinstance(obj, float):
            if obj != obj or obj in (float("inf"), float("-inf")):
                raise RecordError(
                    where or "<record>", f"{obj} is not a JSON number (NaN and Infinity are not)"
                )
        elif isinstance(obj, Mapping):
            if depth >= max_depth:
                raise RecordError(where or "<record>", f"nested deeper than {max_depth} levels")
            children = []
            for k, v in obj.items():
                if not isinstance(k, str):
                    raise RecordError(
                        f"{where}.{k}" if where else str(k), "object keys must be strings"
                    )
                inner = f"{where}.{k}" if where else k
                problem = string_problem(k)
                if problem is not None:
                    raise RecordError(inner, f"the key {problem}")
                children.append((v, inner, depth + 1))
            stack.extend(reversed(children))  # fields are reported in document order
        elif isinstance(obj, list | tuple):
            if depth >= max_depth:
                raise RecordError(where or "<record>", f"nested deeper than {max_depth} levels")
            stack.extend((obj[i], f"{where}[{i}]", depth + 1) for i in range(len(obj) - 1, -1, -1))
        elif isinstance(obj, enum.Enum):  # encoded by value, as canonical_bytes does
            stack.append((obj.value, where, depth))
        elif isinstance(obj, uuid.UUID) or type(obj).__name__ == "Fragment":
            continue  # a UUID's text, or bytes provmark already encoded canonically
        else:
            raise RecordError(where or "<record>", f"a {type(obj).__name__} is not a JSON value")


# Passthrough: datetimes, dataclasses and subclasses of JSON types take the exact walk
# (orjson would write them; the walk decides like the canonical encoder does).
_STRICT = (
    orjson.OPT_STRICT_INTEGER
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def _plainly_fine(value: Any, max_depth: int) -> bool:
    """The common case, decided by orjson in a few microseconds: it refuses integers past
    +-(2^53 - 1), lone surrogates and non-string keys; a NaN or an infinity would show as
    ``null`` and a NUL as ``\\u0000``; and there cannot be more nesting than brackets.
    Anything else (or a false alarm: a real null) takes the exact walk, which names the
    field."""
    try:
        raw = orjson.dumps(value, option=_STRICT)
    except (TypeError, orjson.JSONEncodeError):
        return False
    return (
        b"null" not in raw
        and b"\\u0000" not in raw
        and raw.count(b"[") + raw.count(b"{") <= max_depth
    )


def _short(value: int) -> str:
    text = str(value)
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} digits)"
