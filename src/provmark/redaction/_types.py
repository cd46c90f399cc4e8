"""Core value types shared by the detectors and the redactor."""

from __future__ import annotations

import ipaddress
import re
import string
from collections.abc import Iterable
from typing import NamedTuple, Protocol, runtime_checkable

__all__ = ["ALNUM", "HEX", "KIND_RE", "NAME_RE", "Detector", "Finding", "alnum_at", "normalize"]

#: A finding kind: upper-case identifier; it becomes the placeholder ``[KIND]``.
KIND_RE = re.compile(r"[A-Z][A-Z0-9_]{0,31}")
#: A detector name as used in configuration (``detectors.enable`` / ``disable``).
NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")
ALNUM = frozenset(string.ascii_letters + string.digits)
HEX = frozenset(string.hexdigits)


def alnum_at(text: str, i: int) -> bool:
    """Whether ``text[i]`` exists and is an ASCII letter or digit."""
    return 0 <= i < len(text) and text[i] in ALNUM


class Finding(NamedTuple):
    """A span ``text[start:end]`` that a detector considers sensitive."""

    start: int
    end: int
    kind: str


@runtime_checkable
class Detector(Protocol):
    """Anything that finds sensitive spans in text (built-ins, regexes, NER models...).

    ``find`` must be pure (same text -> same findings) and thread-safe. A detector
    may also define ``kinds: frozenset[str]`` (the kinds it can emit), which lets
    the redactor recognise its own placeholders in already-redacted text.
    """

    @property
    def name(self) -> str: ...

    def find(self, text: str) -> Iterable[Finding]: ...


def _digits(value: str) -> str:
    return "".join(c for c in value if c.isdigit())


def normalize(kind: str, value: str) -> str:
    """The canonical form of a detected value, which is what gets HMAC'd.

    E-mails are lower-cased; cards, phones and SSNs keep only their digits; IBANs
    are upper-cased without spaces; IP addresses take their ``ipaddress`` compressed
    form; anything else is used as found (surrounding whitespace stripped).
    """
    value = value.strip()
    if kind == "EMAIL":
        return value.lower()
    if kind in ("CARD", "PHONE", "SSN"):
        return _digits(value)
    if kind == "IBAN":
        return value.replace(" ", "").upper()
    if kind == "IP":
        try:
            return ipaddress.ip_address(value).compressed
        except ValueError:
            return value.lower()
    return value
