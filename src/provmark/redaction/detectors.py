"""Built-in PII and secret detectors.

Every detector is an immutable object with a ``name`` and a pure, thread-safe
``find(text)``. Each one starts with a cheap test (``in``, or a regex whose first
element is a plain character class so that ``re`` can skip ahead quickly) and
only then does the real work, so clean text costs a few microseconds per detector.
"""

from __future__ import annotations

import ipaddress
import re
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import ClassVar

from provmark.errors import ConfigError
from provmark.redaction._checks import IBAN_LENGTHS, iban_ok, luhn_ok, shannon_entropy, ssn_ok
from provmark.redaction._types import KIND_RE, NAME_RE, Detector, Finding

__all__ = [
    "BUILTIN_DETECTORS",
    "CardDetector",
    "CustomRegex",
    "EmailDetector",
    "EntropyDetector",
    "IbanDetector",
    "IpDetector",
    "PhoneDetector",
    "SecretDetector",
    "default_detectors",
    "us_ssn",
]

_ALNUM = frozenset(string.ascii_letters + string.digits)
_HEX = frozenset(string.hexdigits)


def _alnum_at(text: str, i: int) -> bool:
    return 0 <= i < len(text) and text[i] in _ALNUM


# --------------------------------------------------------------------------- e-mail
_EMAIL_DOMAIN = re.compile(
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"(?:[Xx][Nn]--[A-Za-z0-9-]{1,59}|[A-Za-z]{2,63})"
)
_EMAIL_LOCAL = frozenset(string.ascii_letters + string.digits + "._%+-")


@dataclass(frozen=True, slots=True)
class EmailDetector:
    """``local@domain.tld``; the local part is the usual ``[A-Za-z0-9._%+-]`` run."""

    name: str = "email"
    kinds: ClassVar[frozenset[str]] = frozenset({"EMAIL"})

    def find(self, text: str) -> list[Finding]:
        if "@" not in text:
            return []
        out: list[Finding] = []
        for m in _EMAIL_DOMAIN.finditer(text):
            at = j = m.start()
            while j > 0 and text[j - 1] in _EMAIL_LOCAL:
                j -= 1
            while j < at and text[j] == ".":
                j += 1
            if j < at:
                out.append(Finding(j, m.end(), "EMAIL"))
        return out


# --------------------------------------------------------------------------- phone
# International: +CC then up to 7 groups (optionally separated, area code in parens).
_PHONE_INTL = re.compile(r"\+\d{1,4}(?:[ .\-/]?(?:\(\d{1,5}\)|\d{1,6})){0,7}")
# North American: (415) 555-2671, 415-555-2671, 1 415 555 2671; separators required.
_PHONE_NANP = re.compile(
    r"(?:(?<![0-9])1[ .-])?(?:\([2-9]\d\d\) ?|[2-9]\d\d[ .-])\d\d\d[ .-]\d\d\d\d"
)
# Trunk-prefixed national: 020 7946 0958, (030) 1234567, 01 23 45 67 89, 0171-1234567.
# Separators after the area code must all be the same (so "05.11.2023 14" is no phone).
_PHONE_NATIONAL = re.compile(
    r"(?:\(0[1-9]\d{0,3}\) ?|0[1-9]\d{0,3}[ .\-/])\d{2,8}(?:([ .-])\d{2,8}(?:\1\d{2,8}){0,3})?"
)
_PHONE_HINT = re.compile(r"\d[ .\-/)]\(?\d")


@dataclass(frozen=True, slots=True)
class PhoneDetector:
    """Phone numbers: ``+CC ...`` (8-15 digits), NANP and trunk-``0`` national formats.

    National formats need separators, so plain digit runs (order ids, timestamps)
    are not phones.
    """

    name: str = "phone"
    kinds: ClassVar[frozenset[str]] = frozenset({"PHONE"})

    def find(self, text: str) -> list[Finding]:
        out: list[Finding] = []
        if "+" in text:
            for m in _PHONE_INTL.finditer(text):
                s, e = m.span()
                if s > 0 and (text[s - 1] in _ALNUM or text[s - 1] == "+"):
                    continue
                n = sum(c.isdigit() for c in m.group())
                if 8 <= n <= 15:
                    out.append(Finding(s, e, "PHONE"))
        if _PHONE_HINT.search(text) is None:
            return out
        for rx, lo, hi in ((_PHONE_NANP, 10, 11), (_PHONE_NATIONAL, 9, 13)):
            for m in rx.finditer(text):
                s, e = m.span()
                if s > 0 and text[s - 1] in "+-.":
                    continue
                if _alnum_at(text, s - 1) or _alnum_at(text, e):
                    continue
                if lo <= sum(c.isdigit() for c in m.group()) <= hi:
                    out.append(Finding(s, e, "PHONE"))
        return out


# --------------------------------------------------------------------------- cards
_DIGIT_RUN = re.compile(r"\d(?:[ -]?\d){12,}")
_GROUP = re.compile(r"\d+")


@dataclass(frozen=True, slots=True)
class CardDetector:
    """Payment cards: 13-19 digits, optionally grouped by single spaces or dashes.

    Must pass Luhn and not start with 0 or 1 (no card network issues those; this
    keeps millisecond timestamps and similar ids out). Groups other than the last
    must have at least 4 digits, so phone-like groupings are not cards.
    """

    name: str = "card"
    kinds: ClassVar[frozenset[str]] = frozenset({"CARD"})

    def find(self, text: str) -> list[Finding]:
        out: list[Finding] = []
        for run in _DIGIT_RUN.finditer(text):
            groups = [(g.start(), g.end(), g.group()) for g in _GROUP.finditer(run.group())]
            base = run.start()
            i, n = 0, len(groups)
            while i < n:
                best = -1
                digits = ""
                for j in range(i, n):
                    if j > i and len(groups[j - 1][2]) < 4:
                        break
                    digits += groups[j][2]
                    if len(digits) > 19:
                        break
                    if len(digits) >= 13 and digits[0] not in "01" and luhn_ok(digits):
                        best = j
                if best < 0:
                    i += 1
                    continue
                out.append(Finding(base + groups[i][0], base + groups[best][1], "CARD"))
                i = best + 1
        return out


# --------------------------------------------------------------------------- IBAN
_IBAN = re.compile(r"[A-Z][A-Z]\d\d(?: ?[A-Za-z0-9]){11,34}")


@dataclass(frozen=True, slots=True)
class IbanDetector:
    """IBANs, compact or in groups of four: country length table + mod-97 check."""

    name: str = "iban"
    kinds: ClassVar[frozenset[str]] = frozenset({"IBAN"})

    def find(self, text: str) -> list[Finding]:
        out: list[Finding] = []
        for m in _IBAN.finditer(text):
            s = m.start()
            if _alnum_at(text, s - 1):
                continue
            want = IBAN_LENGTHS.get(m.group()[:2])
            if want is None:
                continue
            e, count = s, 0
            while count < want and e < m.end():
                if text[e] != " ":
                    count += 1
                e += 1
            if count != want or _alnum_at(text, e):
                continue
            if iban_ok(text[s:e].replace(" ", "").upper()):
                out.append(Finding(s, e, "IBAN"))
        return out


# --------------------------------------------------------------------------- IP
_IPV4 = re.compile(r"\d\d?\d?\.\d\d?\d?\.\d\d?\d?\.\d\d?\d?")
_V6_CORE = re.compile(r":[0-9A-Fa-f]{0,4}:")
_V6_BODY = frozenset(string.hexdigits + ":.")


@dataclass(frozen=True, slots=True)
class IpDetector:
    """IPv4 and IPv6 addresses, validated with :mod:`ipaddress` (so 999.1.1.1 is not one)."""

    name: str = "ip"
    kinds: ClassVar[frozenset[str]] = frozenset({"IP"})

    def find(self, text: str) -> list[Finding]:
        out: list[Finding] = []
        if "." in text:
            for m in _IPV4.finditer(text):
                s, e = m.span()
                if s > 0 and (text[s - 1] in _ALNUM or text[s - 1] == "."):
                    continue
                if _alnum_at(text, e) or (
                    e + 1 < len(text) and text[e] == "." and text[e + 1].isdigit()
                ):
                    continue
                try:
                    ipaddress.IPv4Address(m.group())
                except ValueError:
                    continue
                out.append(Finding(s, e, "IP"))
        if text.count(":") >= 2:
            out.extend(self._v6(text))
        return out

    @staticmethod
    def _v6(text: str) -> Iterable[Finding]:
        pos = 0
        while (m := _V6_CORE.search(text, pos)) is not None:
            s = m.start()
            while s > 0 and m.start() - s < 4 and text[s - 1] in _HEX:
                s -= 1
            e = m.start()
            while e < len(text) and text[e] in _V6_BODY:
                e += 1
            pos = max(e, m.start() + 1)
            if s > 0 and (text[s - 1] in _ALNUM or text[s - 1] in ":."):
                continue
            cand = text[s:e]
            while cand:
                try:
                    ipaddress.IPv6Address(cand)
                except ValueError:
                    if cand[-1] in ".:" and not cand.endswith("::"):
                        cand = cand[:-1]
                        continue
                    break
                if not _alnum_at(text, s + len(cand)):
                    yield Finding(s, s + len(cand), "IP")
                break


# --------------------------------------------------------------------------- secrets
_TOKENS = re.compile(
    r"sk-[A-Za-z0-9_-]{20,}"
    r"|gh[pousr]_[A-Za-z0-9]{36,255}"
    r"|github_pat_[A-Za-z0-9_]{22,255}"
    r"|(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}"
    r"|xox[bpars]-[A-Za-z0-9-]{10,}"
    r"|AIza[A-Za-z0-9_-]{35}"
    r"|[rs]k_(?:live|test)_[A-Za-z0-9]{16,}"
    r"|eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*"
)
_PRIVATE_KEY = re.compile(
    r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----"
    r"(?:.*?-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----|.*\Z)",
    re.S,
)
_ASSIGN_SEP = re.compile(r"[:=]")
_ASSIGN_HINTS = ("pass", "pwd", "secret", "key", "token", "credential")
_ASSIGN_KEY = re.compile(
    r"(?<![A-Za-z0-9])(?:password|passwd|passphrase|pwd|pass|secret|client[_-]?secret"
    r"|secret[_-]?key|api[_-]?key|apikey|api[_-]?token|access[_-]?key(?:[_-]?id)?"
    r"|secret[_-]?access[_-]?key|access[_-]?token|auth[_-]?token|refresh[_-]?token"
    r"|token|private[_-]?key|credentials?)[\"']?[ \t]*\Z",
    re.I,
)
_ASSIGN_VALUE = re.compile(r"[ \t]*(?:\"([^\"\n]+)\"|'([^'\n]+)'|([^\s\"',;&<>]+))")
_AUTH_SCHEME = re.compile(r"(?:Bearer|Basic|BEARER|bearer|basic)[ \t]+([A-Za-z0-9._~+/=-]{8,})")
_URL_CREDS = re.compile(r"://[^/\s:@]{1,256}:([^/\s@]{1,256})@")


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
            if not _alnum_at(text, m.start() - 1):
                out.append(Finding(m.start(), m.end(), "SECRET"))
        if "-----BEGIN" in text:
            out.extend(Finding(*m.span(), "SECRET") for m in _PRIVATE_KEY.finditer(text))
        for m in _ASSIGN_SEP.finditer(text):
            i = m.start()
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
        if "earer" in text or "asic" in text or "EARER" in text:
            out.extend(Finding(*m.span(1), "SECRET") for m in _AUTH_SCHEME.finditer(text))
        if "://" in text:
            out.extend(Finding(*m.span(1), "SECRET") for m in _URL_CREDS.finditer(text))
        return out


# --------------------------------------------------------------------------- entropy
_DIGEST_LABEL = re.compile(
    r"(?:sha-?(?:1|224|256|384|512)|sha3-\d{3}|md5|blake2[bs]|blake3|digest)[:=]\Z", re.I
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
            if tok.isalpha() or not any(c.isalpha() for c in tok) or tok.isdigit():
                continue
            hexlike = all(c in _HEX for c in tok)
            limit = self.hex_threshold if hexlike else self.threshold
            if shannon_entropy(tok) < limit:
                continue
            s = m.start()
            if s and text[s - 1] in ":=" and _DIGEST_LABEL.search(text, max(0, s - 12), s):
                continue
            out.append(Finding(s, m.end(), "SECRET"))
        return out


# --------------------------------------------------------------------------- custom
@dataclass(frozen=True, slots=True)
class CustomRegex:
    """A user regex detector. ``kind`` defaults to ``name.upper()``.

    If the pattern has a group named ``value`` only that group is a finding (so
    ``order: (?P<value>\\d+)`` keeps the label). ``validator``, when given, receives
    the matched value and returns whether it really is one (a checksum, say).
    """

    name: str
    pattern: str | re.Pattern[str]
    kind: str | None = None
    validator: Callable[[str], bool] | None = field(default=None, compare=False)
    kinds: frozenset[str] = field(init=False, repr=False)
    _rx: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not NAME_RE.fullmatch(self.name):
            raise ConfigError(
                f"name: invalid detector name {self.name!r} (want [A-Za-z][A-Za-z0-9_]*)"
            )
        kind = self.kind if self.kind is not None else self.name.upper()
        if not KIND_RE.fullmatch(kind):
            raise ConfigError(f"kind: invalid kind {kind!r} (want [A-Z][A-Z0-9_]*)")
        try:
            rx = self.pattern if isinstance(self.pattern, re.Pattern) else re.compile(self.pattern)
        except (re.error, TypeError) as exc:
            raise ConfigError(f"pattern: invalid regex {self.pattern!r}: {exc}") from exc
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "kinds", frozenset({kind}))
        object.__setattr__(self, "_rx", rx)

    def find(self, text: str) -> list[Finding]:
        kind = self.kind or ""
        g: int | str = "value" if "value" in self._rx.groupindex else 0
        out: list[Finding] = []
        for m in self._rx.finditer(text):
            s, e = m.span(g)
            if s < e and (self.validator is None or self.validator(m.group(g))):
                out.append(Finding(s, e, kind))
        return out


_SSN = re.compile(r"(?<![\d-])(\d\d\d)-(\d\d)-(\d\d\d\d)(?!\d|-\d)")


def _ssn_valid(value: str) -> bool:
    area, group, serial = value.split("-")
    return ssn_ok(area, group, serial)


def us_ssn() -> CustomRegex:
    """US Social Security Number ``NNN-NN-NNNN`` (not area 000/666/9xx, group 00, serial 0000)."""
    return CustomRegex("us_ssn", _SSN, kind="SSN", validator=_ssn_valid)


#: Names of the built-in detectors, in priority order (ties between equally long
#: overlapping findings go to the earlier detector).
BUILTIN_DETECTORS: tuple[str, ...] = (
    "email", "card", "iban", "us_ssn", "phone", "ip", "secret", "entropy",
)  # fmt: skip

_BUILTIN_NATIONAL_IDS: dict[str, Callable[[], CustomRegex]] = {"us_ssn": us_ssn}


def default_detectors(
    *,
    entropy_threshold: float = 4.0,
    hex_entropy_threshold: float = 3.0,
    entropy_min_length: int = 20,
) -> tuple[Detector, ...]:
    """All built-in detectors, in :data:`BUILTIN_DETECTORS` order."""
    return (
        EmailDetector(),
        CardDetector(),
        IbanDetector(),
        us_ssn(),
        PhoneDetector(),
        IpDetector(),
        SecretDetector(),
        EntropyDetector(entropy_threshold, hex_entropy_threshold, entropy_min_length),
    )
