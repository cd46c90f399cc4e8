"""Revoked record keys: ``revocations.json`` beside ``keyset.json``.

Revoking key K *since* T says "whoever held K's private key from T on may not be
us". A record's own ``generated_at`` is written by the signer, so a thief can
backdate it; the rule is therefore:

* signed by K and claiming a time at or after T: **fails** (``key_revoked``);
* claiming a time before T: valid **only if** outside evidence shows the record
  existed before T: it is in a checkpoint cosigned by enough trusted witnesses, or
  time-stamped by a pinned TSA, before T. Otherwise it fails too, with the reason.

The evidence itself is gathered by :mod:`provmark.witness.policy`; this module owns
the list and the rule. The list travels signed by the log key (:func:`sign_revocations`,
a C2SP signed note), in ``provmark keys export`` and in every bundle, so an offline
verifier applies it without trusting whoever handed it over.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, VerificationError
from ..record import format_time, now_utc, parse_time
from .keystore import default_home

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ..log.note import NoteVerifier

__all__ = [
    "CHECK",
    "FILE_NAME",
    "Revocation",
    "RevocationList",
    "epoch_to_rfc3339",
    "judge",
    "open_revocations",
    "parse_since",
    "revocations_path",
    "sign_revocations",
]

CHECK = "key_revoked"
FILE_NAME = "revocations.json"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(value: str) -> str:
    """RFC 3339, ``now``, or an age such as ``2d``/``6h``/``30m``; returns RFC 3339 UTC."""
    text = value.strip()
    if text == "now":
        return now_utc()
    if text[:-1].isdigit() and text[-1:] in _UNITS:
        secs = int(text[:-1]) * _UNITS[text[-1]]
        return format_time(parse_time(now_utc()) - timedelta(seconds=secs))
    try:
        return format_time(parse_time(text))
    except ValueError:
        raise ConfigError(
            f"{value!r}: give an RFC 3339 time (2026-11-25T10:00:00Z), now, or an age "
            "like 2d/6h/30m",
            field="since",
        ) from None


@dataclass(frozen=True)
class Revocation:
    key_id: str
    since: str  # RFC 3339 UTC: compromised from this time on
    reason: str
    revoked_at: str

    def to_json(self) -> dict[str, str]:
        return {
            "key_id": self.key_id,
            "since": self.since,
            "reason": self.reason,
            "revoked_at": self.revoked_at,
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> Revocation:
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: each revocation is an object")
        try:
            rev = cls(
                key_id=str(data["key_id"]),
                since=format_time(parse_time(str(data["since"]))),
                reason=str(data.get("reason", "")),
                revoked_at=str(data.get("revoked_at", "")),
            )
        except KeyError as exc:
            raise ConfigError(f"{where}: revocation lacks {exc.args[0]!r}") from None
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        return rev


def revocations_path(keystore: object) -> Path:
    """``revocations.json`` beside the key set of ``keystore`` (its ``directory``)."""
    directory = getattr(keystore, "directory", None)
    return Path(directory or default_home() / "keys") / FILE_NAME


class RevocationList:
    """The revocations in one file (missing file: none)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._by_key: dict[str, Revocation] = {}
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text())
            except (OSError, ValueError) as exc:
                raise ConfigError(f"{self.path}: unreadable revocation list ({exc})") from None
            items = data.get("revocations") if isinstance(data, dict) else None
            if not isinstance(items, list):
                raise ConfigError(f'{self.path}: want {{"revocations": [...]}}')
            for i, item in enumerate(items):
                rev = Revocation.from_json(item, f"{self.path}: revocations[{i}]")
                self._by_key[rev.key_id] = rev

    @classmethod
    def for_keystore(cls, keystore: object) -> RevocationList:
        return cls(revocations_path(keystore))

    def __len__(self) -> int:
        return len(self._by_key)

    def __iter__(self) -> Any:
        return iter(sorted(self._by_key.values(), key=lambda r: r.since))

    def get(self, key_id: str) -> Revocation | None:
        return self._by_key.get(key_id)

    def revoke(self, key_id: str, since: str, reason: str = "") -> Revocation:
        """Add (or move earlier) a revocation and save the file atomically."""
        since = parse_since(since)
        old = self._by_key.get(key_id)
        if old is not None and parse_time(old.since) <= parse_time(since):
            since = old.since  # a revocation never moves later: that would re-validate records
        rev = Revocation(key_id, since, reason or (old.reason if old else ""), now_utc())
        self._by_key[key_id] = rev
        self.save()
        return rev

    def save(self) -> None:
        body = {"revocations": [r.to_json() for r in self]}
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(body, indent=2) + "\n")
        os.replace(tmp, self.path)


STATEMENT = "provmark-revocations/v1"


def revocation_statement(revocations: Any) -> str:
    """The note body by which the log key states the revoked record keys (one per line)."""
    lines = [STATEMENT]
    for rev in sorted(revocations, key=lambda r: (r.key_id, r.since)):
        reason = json.dumps(rev.reason, ensure_ascii=True)
        lines.append(f"{rev.key_id} {rev.since} {rev.revoked_at or '-'} {reason}")
    return "\n".join(lines) + "\n"


def sign_revocations(revocations: Any, origin: str, log_key: Ed25519PrivateKey) -> str:
    """The revocation list as a signed note by the log key (``origin`` is the key name)."""
    from ..log.note import sign_note

    return sign_note(revocation_statement(revocations), origin, log_key)


def open_revocations(note: str, log_key: NoteVerifier) -> list[Revocation]:
    """The revocations in a signed note, after checking the log key's signature;
    :class:`VerificationError` (``key_revoked``) when it does not hold or is malformed."""
    from ..log.note import open_note

    try:
        body, _ = open_note(note, [log_key])
    except VerificationError as exc:
        raise VerificationError(CHECK, f"revocation list: {exc.detail}") from None
    lines = body.rstrip("\n").split("\n")
    if lines[0] != STATEMENT:
        raise VerificationError(CHECK, "revocation list: not a provmark revocation statement")
    out = []
    for line in lines[1:]:
        parts = line.split(" ", 3)
        try:
            key_id, since, revoked_at, reason = parts
            rev = Revocation(key_id, format_time(parse_time(since)), json.loads(reason), revoked_at)
        except (ValueError, TypeError):
            raise VerificationError(CHECK, f"revocation list: bad line {line!r}") from None
        if rev.revoked_at == "-":
            rev = Revocation(rev.key_id, rev.since, rev.reason, "")
        out.append(rev)
    if revocation_statement(out) != body:
        raise VerificationError(CHECK, "revocation list: not in canonical form")
    return out


def judge(rev: Revocation, generated_at: str, existed_by: tuple[str, str] | None) -> str:
    """Apply the rule to one record; return the passing detail or raise ``key_revoked``.

    ``existed_by`` is the earliest (RFC 3339 time, how) outside evidence that the
    record was already logged, or None when there is none.
    """
    since = parse_time(rev.since)
    why = f" ({rev.reason})" if rev.reason else ""
    head = f"key {rev.key_id} is revoked since {rev.since}{why}"
    try:
        made = parse_time(generated_at)
    except ValueError:
        raise VerificationError(CHECK, f"{head}; the record's time is unreadable") from None
    if made >= since:
        raise VerificationError(
            CHECK, f"{head}; this record was signed at {generated_at}, after the compromise"
        )
    if existed_by is None:
        raise VerificationError(
            CHECK,
            f"{head}; the record claims {generated_at} but no checkpoint witnessed or "
            "time-stamped before the compromise includes it (it may be backdated)",
        )
    when, how = existed_by
    if parse_time(when) >= since:
        raise VerificationError(
            CHECK,
            f"{head}; the earliest evidence of this record is {how} at {when}, after the "
            "compromise (it may be backdated)",
        )
    return f"{head}, but the record was logged before: {how} at {when}"


def epoch_to_rfc3339(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(seconds))
