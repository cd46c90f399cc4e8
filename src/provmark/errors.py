"""The one error hierarchy of provmark.

Every error raised on purpose by provmark derives from :class:`ProvmarkError`.
Every failed check during verification is a :class:`VerificationError` whose
``check`` names the check that failed, so a caller (or the CLI) can say exactly
what went wrong.
"""

from __future__ import annotations


class ProvmarkError(Exception):
    """Base class of every error provmark raises on purpose.

    ``field`` names what is at fault in the caller's terms: a parameter of the library
    (``since``, ``tsa_cert``) or a field path of a record (``output.sha256``). Each
    surface maps it to its own words (the CLI to its ``--flag``, the server to
    ``query.since``) without reading the message. ``hint`` says what to do about it.
    """

    field: str | None = None
    hint: str | None = None

    def __init__(self, *args: object, field: str | None = None, hint: str | None = None) -> None:
        super().__init__(*args)
        if field is not None:
            self.field = field
        if hint is not None:
            self.hint = hint

    @property
    def message(self) -> str:
        """The message alone, without the field (a surface puts its own name first)."""
        return str(self.args[0]) if self.args else ""

    def __str__(self) -> str:
        text = self.message
        if self.field and not text.startswith(self.field):
            text = f"{self.field}: {text}"
        return f"{text} ({self.hint})" if self.hint else text


class ConfigError(ProvmarkError):
    """A setting, target or argument is wrong."""


class RecordError(ProvmarkError, ValueError):
    """A record or one of its fields is invalid. ``field`` names the field path."""

    def __init__(self, field: str, reason: str, *, hint: str | None = None) -> None:
        self.reason = reason
        super().__init__(reason, field=field, hint=hint)


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

    def __init__(self, check: str, detail: str, *, hint: str | None = None) -> None:
        self.check = check
        self.detail = detail
        super().__init__(f"{check}: {detail}", hint=hint)


class NoManifest(VerificationError):
    """A file carries no C2PA manifest and has no ``.c2pa`` sidecar (check ``c2pa``): not
    a failed manifest, so callers that only try C2PA as one way among others go on."""

    def __init__(self, detail: str) -> None:
        super().__init__("c2pa", detail)


class InvalidBatch(RecordError):
    """Records of a batch are invalid; ``errors`` lists ``(field, reason)`` of each one
    (``field`` starts with ``[i]``, the record's position). Nothing was stored."""

    def __init__(self, errors: list[tuple[str, str]], total: int) -> None:
        self.errors = errors
        field, reason = errors[0]
        super().__init__(field, reason)
        self.total = total


class RecordsRefused(RecordError):
    """The store refused records that passed validation (say, a value over one of its
    own limits). They are in the dead-letter list with the reason, never reported stored;
    ``refused`` maps each record id to the reason, ``stored`` lists the ids stored."""

    def __init__(self, refused: dict[str, str], stored: list[str], positions: dict[str, int]):
        self.refused = refused
        self.stored = stored
        self.positions = positions
        rid, reason = next(iter(refused.items()))
        super().__init__(f"[{positions.get(rid, '?')}]", f"refused by the store: {reason}")


class DataRefused(StoreError):
    """The store refuses the data of a batch (not a passing failure): retrying the same
    records cannot succeed. The writer sets the offending records aside (dead letters)."""
