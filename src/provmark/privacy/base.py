"""Value types of the privacy layer and the :class:`Vault` contract.

A vault keeps what the signed records must not: the wrapped per-subject data keys,
the field ciphertexts and the log of decrypted reads. Records reference an
encrypted field as ``{"$encrypted": <path>, "hmac": "hmac-sha256:<hex>"}``; the
vault finds its ciphertext by ``(record_id, path)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "UNATTRIBUTED",
    "AccessEntry",
    "AccessRequest",
    "Erasure",
    "KeyInfo",
    "Plaintext",
    "Revealed",
    "Status",
    "Vault",
]

#: The subject of records that name neither a user nor a tenant.
UNATTRIBUTED = "*"


class Status(StrEnum):
    """What became of an encrypted field when it was read."""

    DECRYPTED = "decrypted"
    ERASED = "erased"  # the subject's data key was destroyed
    MISSING = "missing"  # no ciphertext (written by another system, or the row was removed)


@dataclass(frozen=True, slots=True)
class Plaintext:
    """One field value to encrypt: ``data`` is :func:`~provmark.crypto.fieldenc.encode_value`
    of the original; ``subject`` is already hashed (``hmac-sha256:<hex>``)."""

    record_id: str
    path: str
    subject: str
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Revealed:
    """An encrypted field as read back: ``value`` is set only when ``status`` is decrypted."""

    record_id: str
    path: str
    status: Status
    value: Any = field(default=None, repr=False)
    subject: str | None = None


@dataclass(frozen=True, slots=True)
class Erasure:
    """Result of erasing one subject.

    ``keys_shredded`` is how many live data keys were destroyed now (0 when the
    subject was erased before: erasure is idempotent); ``scrubbed`` says whether
    the old key bytes were also purged from the database file and its WAL (SQLite)
    or the table rewritten (PostgreSQL); ``record_id`` is the provenance record of
    the erasure, when one was written.
    """

    subject: str
    keys_shredded: int
    already_erased: bool
    scrubbed: bool
    erased_at: str
    record_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "keys_shredded": self.keys_shredded,
            "already_erased": self.already_erased,
            "scrubbed": self.scrubbed,
            "erased_at": self.erased_at,
            "record_id": self.record_id,
        }


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A data key as an admin may see it: metadata only, never key material."""

    key_id: str
    subject: str
    master_key_id: str
    created_at: str
    erased_at: str | None
    erase_reason: str | None
    fields: int

    def to_json(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "subject": self.subject,
            "master_key_id": self.master_key_id,
            "created_at": self.created_at,
            "erased_at": self.erased_at,
            "erase_reason": self.erase_reason,
            "fields": self.fields,
        }


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """One read to log: who (principal, role), what (action, record, fields) and why."""

    principal: str
    role: str
    action: str
    record_id: str | None
    fields: tuple[str, ...] = ()
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class AccessEntry:
    """A logged read. ``chain`` = SHA-256(previous chain || this entry), so an edited or
    deleted row breaks every later link (see :meth:`Vault.verify_access_log`)."""

    seq: int
    at: str
    principal: str
    role: str
    action: str
    record_id: str | None
    fields: tuple[str, ...]
    reason: str | None
    chain: str

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at,
            "principal": self.principal,
            "role": self.role,
            "action": self.action,
            "record_id": self.record_id,
            "fields": list(self.fields),
            "reason": self.reason,
            "chain": self.chain,
        }


@runtime_checkable
class Vault(Protocol):
    """Where ciphertexts, wrapped data keys and the access log live."""

    @property
    def master_key_id(self) -> str: ...

    def put(self, items: Sequence[Plaintext]) -> None:
        """Encrypt and store fields in one transaction; idempotent by (record_id, path)."""
        ...

    def reveal(self, fields: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Revealed]:
        """Decrypt ``(record_id, path)`` pairs. Raises (nothing partial) on a wrong master
        key (:class:`KeyStoreError`) or a moved/altered ciphertext (:class:`VerificationError`)."""
        ...

    def erase(self, subject: str, reason: str | None = None) -> Erasure:
        """Destroy every data key of a (hashed) subject. Idempotent."""
        ...

    def keys(self, subject: str | None = None, limit: int = 100) -> list[KeyInfo]: ...

    def log_access(self, requests: Sequence[AccessRequest]) -> None: ...

    def access_log(
        self,
        *,
        record_id: str | None = None,
        principal: str | None = None,
        since: str | None = None,
        limit: int = 100,
    ) -> list[AccessEntry]: ...

    def verify_access_log(self) -> int:
        """Recheck the hash chain of the whole access log; returns the number of entries."""
        ...

    def close(self) -> None: ...
