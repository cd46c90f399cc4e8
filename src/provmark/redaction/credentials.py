"""Detectors for credentials: known API-key shapes, private keys, assignments, entropy."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from typing import ClassVar

from provmark.errors import ConfigError
from provmark.redaction._checks import shannon_entropy
from provmark.redaction._types import HEX as _HEX
from provmark.redaction._types import Finding
from provmark.redaction._types import alnum_at as _alnum_at

__all__ = ["EntropyDetector", "SecretDetector"]

_LETTERS = frozenset(string.ascii_letters)
_DIGITS = frozenset(string.digits)


# --------------------------------------------------------------------------- secrets
# The pattern starts with a rare character class ("-", "_", "A", "J") so that ``re``
# can skip ahead quickly; lookbehinds check each shape's prefix, and an empty named
# group tells which shape matched (its prefix length is in _BACK).
_TOKENS = re.compile(
    r"[-_AJ](?:"
    r"(?<=sk-)(?P<sk>)[A-Za-z0-9_-]{20,}"
    r"|(?<=gh[pousr]_)(?P<gh>)[A-Za-z0-9]{36,255}"
    r"|(?<=github_pat_)(?P<ghpat>)[A-Za-z0-9_]{22,255}"
    r"|(?<=xox[bpars]-)(?P<slack>)[A-Za-z0-9-]{10,}"
    r"|(?<=[rs]k_live_|[rs]k_test_)(?P<stripe>)[A-Za-z0-9]{16,}"
    r"|(?<=A)(?P<aws>)(?:KIA|SIA|BIA|CCA)[A-Z0-9]{16}"
    r"|(?<=A)(?P<google>)Iza[A-Za-z0-9_-]{35}"
    r"|(?<=eyJ)(?P<jwt>)[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*"
    r")"
)
_BACK = {"sk": 3, "gh": 4, "ghpat": 11, "slack": 5, "stripe": 8, "aws": 1, "google": 1, "jwt": 3}
_PRIVATE_KEY = re.compile(
    r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----"
    r"(?:.*?-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----|.*\Z)",
    re.S,
)
_ASSIGN_HINTS = ("pass", "pwd", "secret", "key", "token", "credential")
# Not after "[": our own placeholder "[SECRET:..." is no assignment.
_ASSIGN_KEY = re.compile(
    r"(?<![A-Za-z0-9[])(?:password|passwd|passphrase|pwd|pass|secret|client[_-]?secret"
    r"|secret[_-]?key|api[_-]?key|apikey|api[_-]?token|access[_-]?key(?:[_-]?id)?"
    r"|secret[_-]?access[_-]?key|access[_-]?token|auth[_-]?token|refresh[_-]?token"
    r"|token|private[_-]?key|credentials?)[\"']?[ \t]*\Z",
    re.I,
)
_ASSIGN_VALUE = re.compile(r"[ \t]*(?:\"([^\"\n]+)\"|'([^'\n]+)'|([^\s\"',;&<>]+))", re.A)
_AUTH_HEADER = re.compile(
    r"(?i:authorization)[\"']?[ \t]*[:=][ \t]*[\"']?(?:[A-Za-z]+[ \t]+)?([A-Za-z0-9._~+/=-]{6,})"
)
# Outside a header, "Bearer <x>" is a credential only if <x> looks like one (long, has
# a digit): "a basic introduction" is prose.
_AUTH_SCHEME = re.compile(r"(?:Bearer|Basic|BEARER|bearer|basic)[ \t]+([A-Za-z0-9._~+/=-]{16,})")
_URL_CREDS = re.compile(r"://[^/\s:@]{1,256}:([^/\s@]{1,256})@", re.A)


@dataclass(frozen=True, slots=True)
class SecretDetector:
    """API keys and credentials.

    Known token shapes (OpenAI/Anthropic ``sk-``, GitHub ``ghp_``/``github_pat_``,
    AWS ``AKIA``, Slack ``xox?-``, Google ``AIza``, Stripe, JWTs), PEM/PGP private
    key blocks (to the end of the text if unterminated), ``password=...`` /
    ``"api_key": "..."`` assignments, ``Bearer``/``Basic`` credentials and
    ``scheme://user:password@`` URLs. For assignments only the value is a finding.
    """

    name: str = "secret"
    kinds: ClassVar[frozenset[str]] = frozenset({"SECRET"})

    def find(self, text: str) -> list[Finding]:
        out: list[Finding] = []
        for m in _TOKENS.finditer(text):
            start = m.end(m.lastgroup or 0) - _BACK[m.lastgroup or ""]
            if not _alnum_at(text, start - 1):
                out.append(Finding(start, m.end(), "SECRET"))
        if "-----BEGIN" in text:
            out.extend(Finding(*m.span(), "SECRET") for m in _PRIVATE_KEY.finditer(text))
        for i in _positions(text, ":="):
            lo = max(0, i - 40)
            window = text[lo:i].lower()
            if not any(h in window for h in _ASSIGN_HINTS):
                continue
            if _ASSIGN_KEY.search(text, lo, i) is None:
                continue
            v = _ASSIGN_VALUE.match(text, i + 1)
            if v is not None:
                g = 1 if v.group(1) else 2 if v.group(2) else 3
                out.append(Finding(v.start(g), v.end(g), "SECRET"))
        low = text.lower()
        if "authorization" in low:
            out.extend(Finding(*m.span(1), "SECRET") for m in _AUTH_HEADER.finditer(text))
        if "bearer" in low or "basic" in low:
            out.extend(
                Finding(*m.span(1), "SECRET")
                for m in _AUTH_SCHEME.finditer(text)
                if not _DIGITS.isdisjoint(m.group(1))
            )
        if "://" in text:
            out.extend(Finding(*m.span(1), "SECRET") for m in _URL_CREDS.finditer(text))
        return out


def _positions(text: str, chars: str) -> list[int]:
    """Sorted indexes of ``chars`` in ``text`` (``str.find`` is much faster than ``re``)."""
    out: list[int] = []
    for c in chars:
        i = text.find(c)
        while i >= 0:
            out.append(i)
            i = text.find(c, i + 1)
    out.sort()
    return out


# --------------------------------------------------------------------------- entropy
_DIGEST_LABEL = re.compile(
    r"(?:sha-?(?:1|224|256|384|512)|sha3-\d{3}|md5|blake2[bs]|blake3|digest)[:=]\Z", re.I | re.A
)


@dataclass(frozen=True, slots=True)
class EntropyDetector:
    """High-entropy base64/hex-like tokens (unknown API keys, passwords, blobs).

    A token is a run of ``[A-Za-z0-9+/=_-]`` of at least ``min_length`` characters
    with at least one letter and one digit. Pure hex tokens are flagged at
    ``hex_threshold`` bits/char (hex cannot exceed 4), others at ``threshold``.
    Tokens labelled as digests (``sha256:<hex>``) are not secrets and are skipped.
    """

    threshold: float = 4.0
    hex_threshold: float = 3.0
    min_length: int = 20
    name: str = "entropy"
    kinds: ClassVar[frozenset[str]] = frozenset({"SECRET"})
    _token: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.min_length < 8:
            raise ConfigError("detectors.entropy_min_length: must be >= 8")
        for key, v in (
            ("entropy_threshold", self.threshold),
            ("hex_entropy_threshold", self.hex_threshold),
        ):
            if not 0.0 < v <= 8.0:
                raise ConfigError(f"detectors.{key}: must be in (0, 8], got {v!r}")
        rx = re.compile(rf"[A-Za-z0-9+/=_-]{{{self.min_length},}}")
        object.__setattr__(self, "_token", rx)

    def find(self, text: str) -> list[Finding]:
        words = text.split()
        if not words or max(map(len, words)) < self.min_length:
            return []
        out: list[Finding] = []
        for m in self._token.finditer(text):
            tok = m.group()
            chars = set(tok)
            if chars.isdisjoint(_LETTERS) or chars.isdisjoint(_DIGITS):
                continue
            limit = self.hex_threshold if chars <= _HEX else self.threshold
            if shannon_entropy(tok) < limit:
                continue
            s = m.start()
            if s and text[s - 1] in ":=" and _DIGEST_LABEL.search(text, max(0, s - 12), s):
                continue
            out.append(Finding(s, m.end(), "SECRET"))
        return out
