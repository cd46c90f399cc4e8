"""The one error hierarchy of provmark.

Every error raised on purpose by provmark derives from :class:`ProvmarkError`.
Every failed check during verification is a :class:`VerificationError` whose
``check`` names the check that failed, so a caller (or the CLI) can say exactly
what went wrong.
"""

from __future__ import annotations


class ProvmarkError(Exception):
    """Base class of every error provmark raises on purpose."""


class ConfigError(ProvmarkError):
    """A setting, target or argument is wrong."""


class RecordError(ProvmarkError, ValueError):
    """A record or one of its fields is invalid. ``field`` names the field path."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class CanonicalizationError(RecordError):
    """A value cannot be put in RFC 8785 canonical form."""


class CaptureError(ProvmarkError):
    """A generation could not be recorded (strict capture policy)."""


class StoreError(ProvmarkError):
    """The store cannot be opened, read or written."""


class SchemaVersionError(StoreError):
    """The store or record was written by a newer provmark than this one."""


class KeyStoreError(ProvmarkError):
    """A signing or verification key is missing, unreadable or invalid."""


class NotFoundError(ProvmarkError, LookupError):
    """A record, key or checkpoint that was asked for does not exist."""


class VerificationError(ProvmarkError):
    """A verification check failed.

    ``check`` is a stable machine-readable name of the failed check (for example
    ``"output_hash"``, ``"record_signature"``, ``"key_validity"``,
    ``"inclusion_proof"``, ``"checkpoint_signature"``, ``"consistency"``);
    ``detail`` is the human explanation.
    """

    def __init__(self, check: str, detail: str) -> None:
        self.check = check
        self.detail = detail
        super().__init__(f"{check}: {detail}")
