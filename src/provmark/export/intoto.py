"""in-toto: JSON lines, one DSSE envelope of an in-toto Statement v1 per record.

The statement's subject is the output (name + sha256), its predicate the record
(schema: ``docs/schema/predicate-provenance-v1.json``, predicateType
``https://provmark.dev/provenance/v1``). Records without an output (failed
generations) have no subject and are refused with a :class:`RecordError`, unless
the exporter is told to skip them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..crypto.envelopes import (
    INTOTO_PAYLOAD_TYPE,
    PREDICATE_TYPE,
    Keys,
    record_envelope,
    verify_statement,
)
from ..crypto.keys import Signer
from ..errors import VerificationError
from .base import RecordLike, json_line, with_payload

MEDIA_TYPE = "application/vnd.in-toto+jsonl"


class InTotoExporter:
    """Signs one envelope per record with ``signer`` (the records key)."""

    def __init__(self, signer: Signer, *, skip_without_output: bool = False) -> None:
        self._signer = signer
        self._skip = skip_without_output
        self.skipped = 0

    @property
    def name(self) -> str:
        return "in-toto"

    @property
    def media_type(self) -> str:
        return MEDIA_TYPE

    def export(self, records: Iterable[RecordLike]) -> Iterator[bytes]:
        for item in records:
            record, payload = with_payload(item)
            if record.output is None and self._skip:
                self.skipped += 1
                continue
            yield json_line(record_envelope(record, self._signer, payload=payload))


def verify_lines(
    lines: Iterable[bytes | str] | str | bytes | Path, keys: Keys
) -> list[dict[str, Any]]:
    """Verify every envelope of an in-toto export; return the statements.

    Raises ``VerificationError("dsse", "line N: ...")`` at the first bad line.
    """
    if isinstance(lines, Path):
        lines = lines.read_bytes()
    if isinstance(lines, str | bytes):
        lines = lines.splitlines()
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            envelope = json.loads(line)
            out.append(verify_statement(envelope, keys, predicate_type=PREDICATE_TYPE))
        except ValueError:
            raise VerificationError("dsse", f"line {n}: not JSON") from None
        except VerificationError as exc:
            raise VerificationError("dsse", f"line {n}: {exc.detail}") from None
    return out


def predicate_schema() -> dict[str, Any]:
    """JSON Schema of the predicate (``docs/schema/predicate-provenance-v1.json``).

    The predicate is the record (as pydantic models it) with ``signature`` and ``log``.
    """
    from ..record import Record

    schema = Record.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://provmark.dev/schema/predicate-provenance-v1.json"
    schema["title"] = "provmark provenance predicate v1"
    schema["description"] = (
        f"The predicate of in-toto Statements with predicateType {PREDICATE_TYPE}: a "
        "provmark record. Removing 'signature' and 'log' and encoding the rest with RFC "
        "8785 gives the bytes that 'signature' covers; 'log' places the record in the "
        "provmark transparency log."
    )
    return schema


__all__ = [
    "INTOTO_PAYLOAD_TYPE",
    "MEDIA_TYPE",
    "InTotoExporter",
    "predicate_schema",
    "verify_lines",
]
