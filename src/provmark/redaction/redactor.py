"""The redactor: detect, merge, replace; and apply a policy to JSON-like documents."""

from __future__ import annotations

import hmac as _hmac
import re
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import rfc8785

from provmark.errors import ConfigError, RecordError
from provmark.redaction._types import KIND_RE, normalize
from provmark.redaction.policy import TERMINAL_ACTIONS, Action, Mode, Policy

__all__ = [
    "HMAC_PREFIX",
    "MASKED",
    "EncryptionItem",
    "RedactedDocument",
    "RedactedSpan",
    "Redaction",
    "Redactor",
]

#: Prefix of whole-value hashes in documents: ``hmac-sha256:<64 hex>``.
HMAC_PREFIX = "hmac-sha256:"
#: Replacement of a field with action ``mask``.
MASKED = "[REDACTED]"
MIN_KEY_BYTES = 16
_MAX_DEPTH = 100
_MAX_PASSES = 8

# Text that is already a placeholder (or a whole-value hash) is left alone, which
# is what makes redaction idempotent.
_PROTECTED = re.compile(r"\[([A-Z][A-Z0-9_]{0,31})(?::[0-9a-f]{16})?\]|hmac-sha256:[0-9a-f]{64}")


class RedactedSpan(NamedTuple):
    """One redacted value: where it was in the original string and its keyed HMAC.

    ``hmac`` is the hex HMAC-SHA-256 of the normalized value; the plaintext is never
    kept. ``path`` is the field path for document findings, ``""`` for plain text.
    """

    kind: str
    start: int
    end: int
    hmac: str
    path: str = ""


class EncryptionItem(NamedTuple):
    """A value that policy says must be encrypted (by another module) at ``path``."""

    path: str
    value: Any


@dataclass(frozen=True, slots=True)
class Redaction:
    """Result of :meth:`Redactor.redact_text`."""

    text: str
    findings: tuple[RedactedSpan, ...]
    counts: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class RedactedDocument:
    """Result of :meth:`Redactor.redact_document`."""

    doc: dict[str, Any]
    findings: tuple[RedactedSpan, ...]
    to_encrypt: tuple[EncryptionItem, ...]

    @property
    def counts(self) -> dict[str, int]:
        return _counts(self.findings)


def _counts(findings: Sequence[RedactedSpan]) -> dict[str, int]:
    c = Counter(f.kind for f in findings)
    return {k: c[k] for k in sorted(c)}


_Raw = tuple[int, int, str, int]  # start, end, kind, detector priority
_Piece = tuple[int, int, int, int, bool]  # out start, out end, orig start, orig end, kept


class _Dropped:
    pass


_DROPPED = _Dropped()


class Redactor:
    """Applies a :class:`Policy` with a secret HMAC key. Immutable and thread-safe.

    Same input + same key (+ same policy) -> same output, byte for byte.
    """

    __slots__ = ("_detectors", "_key", "_known_kinds", "_policy")

    def __init__(self, policy: Policy | None, hmac_key: bytes) -> None:
        if not isinstance(hmac_key, bytes | bytearray | memoryview):
            raise ConfigError("hmac_key: must be bytes")
        key = bytes(hmac_key)
        if len(key) < MIN_KEY_BYTES:
            raise ConfigError(f"hmac_key: must be at least {MIN_KEY_BYTES} bytes, got {len(key)}")
        self._key = key
        self._policy = policy if policy is not None else Policy()
        self._detectors = self._policy.detectors
        kinds = {"REDACTED"}
        for d in self._detectors:
            kinds.update(getattr(d, "kinds", ()))
        self._known_kinds = frozenset(kinds)

    def __repr__(self) -> str:
        return f"Redactor(policy={self._policy!r}, hmac_key=<{len(self._key)} bytes>)"

    @property
    def policy(self) -> Policy:
        return self._policy

    # ------------------------------------------------------------------ hashing
    def hmac(self, value: str) -> str:
        """Hex HMAC-SHA-256 of ``value`` (UTF-8) under this redactor's key."""
        return _hmac.digest(self._key, value.encode("utf-8", "surrogatepass"), "sha256").hex()

    def token(self, kind: str, value: str) -> str:
        """The ``hash``-mode placeholder a raw value gets, e.g. ``[EMAIL:1f0c...]``.

        Lets a search layer find redacted occurrences of a known value.
        """
        return f"[{kind}:{self.hmac(normalize(kind, value))[:16]}]"

    # ------------------------------------------------------------------ text
    def redact_text(self, text: str, *, mode: Mode | None = None) -> Redaction:
        """Replace every detected value in ``text``; ``mode`` overrides the policy's."""
        if not isinstance(text, str):
            raise RecordError("text", f"expected str, got {type(text).__name__}")
        raw = self._detect(text)
        if not raw:
            return Redaction(text, (), {})
        m = Mode(mode) if mode is not None else self._policy.mode
        spans = _merge(raw)
        for _ in range(_MAX_PASSES):
            findings = self._findings(text, spans)
            out, pieces = _render(text, findings, m)
            # A replacement can change the context of its neighbours (a boundary
            # character disappears, two fragments meet): scan the output again and
            # widen the original spans until nothing new is found.
            extra = self._detect(out)
            if not extra:
                break
            starts = [p[0] for p in pieces]
            raw.extend(
                (_to_orig(pieces, starts, s, False), _to_orig(pieces, starts, e, True), k, prio)
                for s, e, k, prio in extra
            )
            widened = _merge(raw)
            if widened == spans:
                break
            spans = widened
        else:
            findings = self._findings(text, spans)
            out, _ = _render(text, findings, m)
        return Redaction(out, findings, _counts(findings))

    def _findings(self, text: str, spans: list[tuple[int, int, str]]) -> tuple[RedactedSpan, ...]:
        return tuple(RedactedSpan(k, s, e, self.hmac(normalize(k, text[s:e]))) for s, e, k in spans)

    def _detect(self, text: str) -> list[_Raw]:
        protected: list[tuple[int, int]] = []
        if "[" in text or HMAC_PREFIX in text:
            protected = [
                m.span()
                for m in _PROTECTED.finditer(text)
                if m.group(1) is None or m.group(1) in self._known_kinds
            ]
        pstarts = [p[0] for p in protected]
        raw: list[_Raw] = []
        n = len(text)
        for prio, det in enumerate(self._detectors):
            for f in det.find(text):
                s, e, kind = f
                if not (
                    type(s) is int
                    and type(e) is int
                    and 0 <= s < e <= n
                    and KIND_RE.fullmatch(kind)
                ):
                    raise ConfigError(f"detector {det.name!r} returned an invalid finding {f!r}")
                if protected:
                    i = bisect_right(pstarts, s) - 1
                    if i >= 0 and e <= protected[i][1]:
                        continue
                raw.append((s, e, kind, prio))
        return raw

    # ------------------------------------------------------------------ documents
    def redact_document(self, doc: Mapping[str, Any]) -> RedactedDocument:
        """Apply the policy to a JSON-like document (dicts, lists, scalars).

        Returns a new document; ``to_encrypt`` lists (path, original value) for every
        ``encrypt`` field, which the document holds as
        ``{"$encrypted": path, "hmac": "hmac-sha256:<hex>"}``.
        """
        if not isinstance(doc, Mapping):
            raise RecordError("$", f"document must be a mapping, got {type(doc).__name__}")
        findings: list[RedactedSpan] = []
        to_encrypt: list[EncryptionItem] = []
        out = self._walk(doc, [], self._policy.default, findings, to_encrypt)
        assert isinstance(out, dict)
        return RedactedDocument(out, tuple(findings), tuple(to_encrypt))

    def _walk(
        self,
        value: Any,
        path: list[str],
        inherited: Action,
        findings: list[RedactedSpan],
        to_encrypt: list[EncryptionItem],
    ) -> Any:
        if len(path) > _MAX_DEPTH:
            raise RecordError(".".join(path), f"nested deeper than {_MAX_DEPTH} levels")
        explicit = self._policy.action_for(path) if path else None
        container = isinstance(value, Mapping | list | tuple)
        action = explicit if explicit is not None else inherited
        if action in TERMINAL_ACTIONS and (explicit is not None or not container):
            return self._terminal(action, value, path, to_encrypt)
        if isinstance(value, Mapping):
            res: dict[str, Any] = {}
            for k, v in value.items():
                if not isinstance(k, str):
                    raise RecordError(".".join(path) or "$", f"key {k!r} is not a string")
                r = self._walk(v, [*path, k], action, findings, to_encrypt)
                if r is not _DROPPED:
                    res[k] = r
            return res
        if isinstance(value, list | tuple):
            items = (
                self._walk(v, [*path, str(i)], action, findings, to_encrypt)
                for i, v in enumerate(value)
            )
            return [r for r in items if r is not _DROPPED]
        _check_scalar(value, path)
        if action is Action.REDACT:
            if isinstance(value, str) and value:
                red = self.redact_text(value)
                where = ".".join(path)
                findings.extend(f._replace(path=where) for f in red.findings)
                return red.text
            if type(value) is int and abs(value) >= 1_000_000:  # a card stored as a number
                red = self.redact_text(str(value))
                if red.findings:
                    where = ".".join(path)
                    findings.extend(f._replace(path=where) for f in red.findings)
                    return red.text
        return value

    def _terminal(
        self, action: Action, value: Any, path: list[str], to_encrypt: list[EncryptionItem]
    ) -> Any:
        where = ".".join(path)
        if action is Action.DROP:
            return _DROPPED
        if action is Action.MASK:
            return MASKED
        plain = _plain(value, path)
        if isinstance(plain, str):
            data = plain.encode("utf-8", "surrogatepass")
        else:
            try:
                data = bytes(rfc8785.dumps(_safe_ints(plain)))
            except Exception as exc:  # rfc8785 has its own error types
                raise RecordError(where, f"cannot canonicalize value: {exc}") from exc
        digest = HMAC_PREFIX + _hmac.digest(self._key, data, "sha256").hex()
        if action is Action.HASH:
            return digest
        to_encrypt.append(EncryptionItem(where, plain))
        return {"$encrypted": where, "hmac": digest}


def _check_scalar(value: Any, path: list[str]) -> None:
    if value is not None and not isinstance(value, str | int | float):
        raise RecordError(".".join(path) or "$", f"unsupported type {type(value).__name__}")


def _plain(value: Any, path: list[str]) -> Any:
    """A JSON-plain copy (tuples -> lists), rejecting anything that is not JSON-like."""
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise RecordError(".".join(path) or "$", f"key {k!r} is not a string")
            out[k] = _plain(v, [*path, k])
        return out
    if isinstance(value, list | tuple):
        return [_plain(v, [*path, str(i)]) for i, v in enumerate(value)]
    _check_scalar(value, path)
    return value


_MAX_SAFE_INT = 2**53 - 1


def _safe_ints(value: Any) -> Any:
    """Integers beyond the I-JSON range become decimal strings (the record convention)."""
    if type(value) is int and not -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT:
        return str(value)
    if isinstance(value, dict):
        return {k: _safe_ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_safe_ints(v) for v in value]
    return value


def _merge(raw: list[_Raw]) -> list[tuple[int, int, str]]:
    """Union overlapping findings; the kind is that of the longest, then earliest,
    then highest-priority member. Deterministic for any input order."""
    out: list[tuple[int, int, str]] = []
    cs = ce = -1
    best: tuple[int, int, int, str] | None = None
    for s, e, kind, prio in sorted(raw):
        if best is not None and s < ce:
            ce = max(ce, e)
            best = min(best, (s - e, s, prio, kind))
            continue
        if best is not None:
            out.append((cs, ce, best[3]))
        cs, ce, best = s, e, (s - e, s, prio, kind)
    if best is not None:
        out.append((cs, ce, best[3]))
    return out


def _render(text: str, findings: Sequence[RedactedSpan], mode: Mode) -> tuple[str, list[_Piece]]:
    """Build the redacted text and the map of output pieces back to the original."""
    parts: list[str] = []
    pieces: list[_Piece] = []
    pos = olen = 0
    for f in findings:
        s, e = f.start, f.end
        if s > pos:
            parts.append(text[pos:s])
            pieces.append((olen, olen + s - pos, pos, s, True))
            olen += s - pos
        if mode is Mode.MASK:
            ph = f"[{f.kind}]"
        elif mode is Mode.HASH:
            ph = f"[{f.kind}:{f.hmac[:16]}]"
        else:
            ph = ""
        parts.append(ph)
        pieces.append((olen, olen + len(ph), s, e, False))
        olen += len(ph)
        pos = e
    if pos < len(text):
        parts.append(text[pos:])
        pieces.append((olen, olen + len(text) - pos, pos, len(text), True))
    return "".join(parts), pieces


def _to_orig(pieces: list[_Piece], starts: list[int], p: int, is_end: bool) -> int:
    """Map a position in redacted output back to the original text."""
    i = (bisect_left(starts, p) if is_end else bisect_right(starts, p)) - 1
    i = max(i, 0)
    out_s, _out_e, o_s, o_e, kept = pieces[i]
    if kept:
        return o_s + (p - out_s)
    return o_e if is_end else o_s
