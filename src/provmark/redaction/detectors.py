"""Detector registry: user regexes, national ids and the default detector set.

Every detector is an immutable object with a ``name`` and a pure, thread-safe
``find(text)``; see :class:`~provmark.redaction.Detector` for plug-ins.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from provmark.errors import ConfigError
from provmark.redaction._checks import ssn_ok
from provmark.redaction._types import KIND_RE, NAME_RE, Detector, Finding
from provmark.redaction.credentials import EntropyDetector, SecretDetector
from provmark.redaction.pii import (
    CardDetector,
    EmailDetector,
    IbanDetector,
    IpDetector,
    PhoneDetector,
)

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


# The lookbehind sits after the first digit so the pattern still starts with \d (fast scan).
_SSN = re.compile(r"\d(?<![\d-]\d)\d\d-\d\d-\d\d\d\d(?!\d|-\d)", re.A)


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
