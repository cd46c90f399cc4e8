"""Detectors for personal data: e-mail, phone, payment card, IBAN, IP address.

Each detector starts with a cheap test (``in``, or a regex whose first element is a
plain character class so that ``re`` can skip ahead quickly) and only then does the
real work, so clean text costs a few microseconds per detector.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from provmark.redaction._checks import IBAN_LENGTHS, iban_ok, luhn_ok
from provmark.redaction._types import ALNUM as _ALNUM
from provmark.redaction._types import HEX as _HEX
from provmark.redaction._types import Finding
from provmark.redaction._types import alnum_at as _alnum_at

__all__ = ["CardDetector", "EmailDetector", "IbanDetector", "IpDetector", "PhoneDetector"]

# --------------------------------------------------------------------------- e-mail
_EMAIL_DOMAIN = re.compile(
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"(?:[Xx][Nn]--[A-Za-z0-9-]{1,59}|[A-Za-z]{2,63})",
    re.A,
)
# RFC 5322 atext (plus "." for dot-atoms). Characters that usually delimit rather
# than belong to an address ("email=jo@x.org", "'jo@x.org'", "**jo@x.org**") cut the
# local part, unless nothing would be left of it.
_EMAIL_LOCAL = _ALNUM | frozenset(".!#$%&'*+-/=?^_`{|}~")
_EMAIL_CUT = re.compile(r".*[=/|'`{}*&?]", re.S)


@dataclass(frozen=True, slots=True)
class EmailDetector:
    """``local@domain.tld`` (internationalized ``xn--`` TLDs included)."""

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
            cut = _EMAIL_CUT.match(text, j, at)
            if cut is not None and cut.end() < at:
                j = cut.end()
            while j < at and text[j] == ".":
                j += 1
            if j < at:
                out.append(Finding(j, m.end(), "EMAIL"))
        return out


# --------------------------------------------------------------------------- phone
# International: +CC then up to 7 groups (optionally separated, area code in parens).
_PHONE_INTL = re.compile(r"\+\d{1,4}(?:[ .\-/]?(?:\(\d{1,5}\)|\d{1,6})){0,7}", re.A)
# North American: (415) 555-2671, 415-555-2671, 1 415 555 2671; separators required.
_PHONE_NANP = re.compile(
    r"(?:(?<![0-9])1[ .-])?(?:\([2-9]\d\d\) ?|[2-9]\d\d[ .-])\d\d\d[ .-]\d\d\d\d", re.A
)
# Trunk-prefixed national: 020 7946 0958, (030) 1234567, 01 23 45 67 89, 0171-1234567.
# Separators after the area code must all be the same (so "05.11.2023 14" is no phone).
_PHONE_NATIONAL = re.compile(
    r"(?:\(0[1-9]\d{0,3}\) ?|0[1-9]\d{0,3}[ .\-/])\d{2,8}(?:([ .-])\d{2,8}(?:\1\d{2,8}){0,3})?",
    re.A,
)
# NANP and national numbers have at least 9 digits, at most 2 separators apart.
_PHONE_HINT = re.compile(r"\d(?:[ .\-/()]{0,2}\d){8}", re.A)


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
_DIGIT_RUN = re.compile(r"\d(?:[ -]?\d){12,}", re.A)
_GROUP = re.compile(r"\d+", re.A)


@dataclass(frozen=True, slots=True)
class CardDetector:
    """Payment cards: 13-19 digits, optionally grouped by single spaces or dashes.

    Must pass Luhn and not start with 0 or 1 (no card network issues those; this
    keeps millisecond timestamps and similar ids out). A grouped card has groups of
    4-6 digits (the last one may be shorter), so phone-like groupings are not cards
    and a neighbouring number is not glued onto a plain 13-19 digit card.
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
                    if j > i and not 4 <= len(groups[j - 1][2]) <= 6:
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
_IBAN = re.compile(r"[A-Z][A-Z]\d\d(?: ?[A-Za-z0-9]){11,34}", re.A)


@dataclass(frozen=True, slots=True)
class IbanDetector:
    """IBANs, compact or in groups of four: country length table + mod-97 check."""

    name: str = "iban"
    kinds: ClassVar[frozenset[str]] = frozenset({"IBAN"})

    def find(self, text: str) -> list[Finding]:
        out: list[Finding] = []
        pos = 0
        # The candidate regex is greedy, so a rejected candidate may have swallowed
        # the start of a real IBAN: resume right after a rejected start.
        while (m := _IBAN.search(text, pos)) is not None:
            s = pos = m.start()
            pos += 1
            want = IBAN_LENGTHS.get(m.group()[:2])
            if want is None or _alnum_at(text, s - 1):
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
                pos = e
        return out


# --------------------------------------------------------------------------- IP
_IPV4 = re.compile(r"\d\d?\d?\.\d\d?\d?\.\d\d?\d?\.\d\d?\d?", re.A)
_V6_CORE = re.compile(r":[0-9A-Fa-f]{0,4}:")
_V6_BODY = _HEX | frozenset(":.")


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
