"""``Draft``: an unsigned record on its way to the writer, with what rides beside it.

A record dict holds exactly the fields that become the signed payload. What the
capture path still has to do before signing travels next to it, typed, never as keys
inside the record: the raw input to render (redacted, truncated) as
``input.snapshot``, the content to fingerprint for soft binding, and whether the
record is already prepared (redacted, sealed, user id hashed).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

__all__ = ["ABSENT", "Draft", "Fingerprint"]


class _Absent(enum.Enum):
    ABSENT = "absent"


ABSENT = _Absent.ABSENT
"""No raw input to render: distinct from ``None``, which is a value like any other."""


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What to fingerprint for soft binding (``softbind.BackgroundFingerprinter.add``)."""

    content: Any
    media_type: str | None


@dataclass(slots=True)
class Draft:
    """``record``: the unsigned record's fields. ``raw_input``: the input to render as
    ``record["input"]["snapshot"]`` (``ABSENT``: none). ``fingerprint``: what to
    fingerprint once the record is queued. ``prepared``: ``record`` is final (a durable
    journal line, a replayed one); preparing it again changes nothing."""

    record: dict[str, Any]
    raw_input: Any = ABSENT
    fingerprint: Fingerprint | None = None
    prepared: bool = False

    @property
    def record_id(self) -> str:
        return str(self.record["record_id"])

    @property
    def has_raw_input(self) -> bool:
        return self.raw_input is not ABSENT
