"""RFC 8785 (JCS) canonical JSON bytes, fast.

``rfc8785.dumps`` is the reference but is pure Python (~16k records/s). The hot
path is orjson (native): its output is already JCS for strings, integers, key
order of BMP keys and floats in ECMAScript's plain range, and
:func:`_orjson_canonical` checks the output for the few forms where it is not
(integral or exponent floats, ``null`` that may have been a NaN, characters
above U+FFFF that change key order). Those documents, and anything orjson
refuses, take the exact path: the C ``json`` encoder with these patches:

* floats: JCS prints them as ECMAScript does (``2`` not ``2.0``, ``1e-7`` not
  ``1e-07``). Each float is swapped for a unique marker string, the document is
  encoded, and the markers are replaced by ``rfc8785.dumps(float)``.
* key order: JCS sorts by UTF-16 code units, Python by code points; they differ
  only for keys with characters above U+FFFF, which take the reference path.
* integers outside the IEEE-754 safe range are refused (pass them as strings),
  unless their decimal text is how JCS prints some double (a float read back).

:class:`Fragment` lets a caller reuse the canonical bytes of a sub-document
that does not change (the environment context), so it is encoded once per process.
The property tests check ``canonical_bytes(x) == rfc8785.dumps(x)``.
"""

from __future__ import annotations

import enum
import json
import re
import uuid
from collections.abc import Mapping
from typing import Any

import orjson
import rfc8785

from .errors import CanonicalizationError

MAX_SAFE_INT = 2**53 - 1
_MARKER = "\x00provmark-splice#"


class Fragment:
    """A JSON value together with its canonical bytes, encoded once."""

    __slots__ = ("raw", "value")

    def __init__(self, value: Any, raw: bytes | None = None) -> None:
        self.value = value
        self.raw = canonical_bytes(value) if raw is None else raw

    def __repr__(self) -> str:
        return f"Fragment({self.raw[:40]!r}...)"


class _Walk:
    __slots__ = ("marker", "path", "slow", "splices")

    def __init__(self) -> None:
        # If a user string happens to contain the marker, the count of markers in the
        # output no longer matches and canonical_bytes falls back to the reference
        # encoder, so a fixed marker is always correct (only ever slower).
        self.marker = _MARKER
        self.splices: list[bytes] = []
        self.slow = False

    def splice(self, raw: bytes) -> str:
        self.splices.append(raw)
        return f"{self.marker}{len(self.splices) - 1}"

    def value(self, obj: Any, path: str) -> Any:
        # Ordered by frequency in provenance records.
        if obj is None or obj is True or obj is False:
            return obj
        t = type(obj)
        if t is str:
            return obj
        if t is int:
            if -MAX_SAFE_INT <= obj <= MAX_SAFE_INT:
                return obj
            as_double = _double_text(obj)
            if as_double is not None:
                return self.splice(as_double)
            raise CanonicalizationError(
                path, f"integer {obj} is outside the IEEE-754 safe range; pass it as a string"
            )
        if t is float:
            if obj != obj or obj in (float("inf"), float("-inf")):
                raise CanonicalizationError(path, f"{obj} is not representable in JSON")
            return self.splice(float_text(obj))
        if t is dict or isinstance(obj, Mapping):
            out = {}
            for k, v in obj.items():
                if type(k) is not str:
                    raise CanonicalizationError(
                        f"{path}.{k}", f"object keys must be strings, not {type(k).__name__}"
                    )
                if not k.isascii() and max(k) > "\uffff":
                    self.slow = True
                out[k] = self.value(v, f"{path}.{k}" if path else k)
            return out
        if t is list or t is tuple:
            return [self.value(v, f"{path}[{i}]") for i, v in enumerate(obj)]
        if t is Fragment:
            return self.splice(obj.raw)
        if isinstance(obj, enum.Enum):  # as orjson encodes them
            return self.value(obj.value, path)
        if isinstance(obj, uuid.UUID):
            return str(obj)
        if isinstance(obj, bool):
            return bool(obj)
        if isinstance(obj, int):
            return self.value(int(obj), path)
        if isinstance(obj, float):
            return self.value(float(obj), path)
        if isinstance(obj, str):
            return str(obj)
        raise CanonicalizationError(
            path or "<root>",
            f"{type(obj).__name__} is not JSON (use str, int, float, bool, None, list, dict)",
        )


def float_text(value: float) -> bytes:
    """ECMAScript Number-to-String of a finite double, as JCS requires.

    Python's repr gives the same shortest digits; the forms agree except for
    integral values (``2.0``), exponents (Python switches at 1e16 and 1e-4, JS at
    1e21 and 1e-6) and ``-0.0``; those few take the reference encoder.
    """
    r = repr(value)
    if "e" in r:
        return rfc8785.dumps(value)
    if r.endswith(".0"):
        if value == 0:
            return b"0"
        return rfc8785.dumps(value) if abs(value) >= 1e16 else r[:-2].encode()
    return r.encode()


def _double_text(value: int) -> bytes | None:
    """The JCS text of a big integer that is how JCS prints some double (1e16 read back
    from JSON as an int), else None."""
    if abs(value) >= 2**1024:
        return None
    text = rfc8785.dumps(float(value))
    return text if text == str(value).encode() else None


def _plain(obj: Any) -> Any:
    """Replace fragments by their values (for the reference encoder and json.dumps)."""
    if type(obj) is Fragment:
        return _plain(obj.value)
    if type(obj) is int and abs(obj) > MAX_SAFE_INT and _double_text(obj) is not None:
        return float(obj)
    if isinstance(obj, Mapping):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


def canonical_bytes(obj: Any, path: str = "") -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of a JSON-like value.

    ``path`` prefixes field names in errors (``params.seed: integer ...``).
    """
    fast = _orjson_canonical(obj)
    return fast if fast is not None else _exact(obj, path)


_ORJSON_OPTIONS = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_STRICT_INTEGER
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)
# Where orjson's output may not be JCS: a float printed integral (``2.0``, ``-0.0``) or
# with an exponent (``1e+16``, ``1e-7``; orjson's other floats are ECMAScript's, checked
# on a million doubles), ``null`` (orjson writes NaN and infinities as null) and a
# 4-byte UTF-8 sequence (a key above U+FFFF sorts differently in UTF-16). Each check is
# a literal-prefixed search, so the scan costs about 2 us per KB; matches inside
# strings are false alarms that only cost the exact path.
_INTEGRAL_FLOAT = re.compile(rb"\.0(?:[,\]}]|$)")
_NEGATIVE_EXPONENT = re.compile(rb"e-[0-9]+(?:[,\]}]|$)")
_ABOVE_BMP = re.compile(rb"[\xf0-\xf4]")


def _suspect(out: bytes) -> bool:
    return (
        b"null" in out
        or b"e+" in out
        or _INTEGRAL_FLOAT.search(out) is not None
        or _NEGATIVE_EXPONENT.search(out) is not None
        or (not out.isascii() and _ABOVE_BMP.search(out) is not None)
    )


def _orjson_default(obj: Any) -> Any:
    """Our fragments, and subclasses of JSON types (passed through to here) as the exact
    path's walk sees them."""
    if type(obj) is Fragment:
        return orjson.Fragment(obj.raw)
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj)
    if isinstance(obj, Mapping):
        return dict(obj)
    if isinstance(obj, list):
        return list(obj)
    raise TypeError  # the exact path names the field and the reason


def _orjson_canonical(obj: Any) -> bytes | None:
    """JCS bytes from orjson, or None when the exact path must decide."""
    try:
        out = orjson.dumps(obj, default=_orjson_default, option=_ORJSON_OPTIONS)
    except (TypeError, orjson.JSONEncodeError):
        return None
    if _suspect(out):
        return None
    # A copy of exact size: orjson's output buffers, when kept (a batch of payloads, a
    # fragment), fragment the heap so badly that each costs ~15 us of page faults.
    return bytes(memoryview(out))


def _exact(obj: Any, path: str) -> bytes:
    walk = _Walk()
    prepared = walk.value(obj, path)
    if walk.slow:
        return _reference(_plain(obj))
    try:
        text = json.dumps(
            prepared, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
        )
    except (TypeError, ValueError) as exc:  # pragma: no cover - the walk already checked
        raise CanonicalizationError("<root>", str(exc)) from exc
    if not walk.splices:
        return _utf8(text)
    encoded_marker = json.dumps(walk.marker)[1:-1]  # the marker as it appears inside a string
    parts = text.split(f'"{encoded_marker}')
    if len(parts) != len(walk.splices) + 1:
        return _reference(_plain(obj))  # a user string contained the marker: be exact instead
    out = [_utf8(parts[0])]
    for part in parts[1:]:
        idx_end = part.index('"')
        out.append(walk.splices[int(part[:idx_end])])
        out.append(_utf8(part[idx_end + 1 :]))
    return b"".join(out)


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CanonicalizationError(
            "<string>", "contains a lone surrogate, not valid UTF-8"
        ) from exc


def _reference(obj: Any) -> bytes:
    try:
        return rfc8785.dumps(obj)
    except rfc8785.CanonicalizationError as exc:
        raise CanonicalizationError("<root>", str(exc)) from exc


def to_json_value(obj: Any) -> Any:
    """A plain JSON value (fragments resolved), e.g. for ``json.dumps``."""
    return _plain(obj)
