"""The one validation at the door for records built elsewhere.

``Provmark.ingest`` (library), ``POST /v1/records`` (server, direct and queue mode) and
the queue worker all call :func:`validate_batch`, so they accept and refuse exactly the
same records, and every record they accept is one the writer signs and stores as sent:

* each record is a JSON object within the I-JSON limits (:mod:`provmark.jsonlimits`:
  no NaN/Infinity, integers within +-(2^53 - 1), no NUL or lone surrogate, bounded depth);
* it validates against the record model (:func:`provmark.record.validate_record`), and
  its free-form ``params`` encode canonically within their size limit;
* no ``record_id`` appears twice in one batch.

A batch is all or nothing: :class:`~provmark.errors.InvalidBatch` lists every invalid
record as ``([i].field, reason)`` and nothing is stored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..canonical import Fragment
from ..errors import InvalidBatch, RecordError
from ..jsonlimits import check_json
from ..record import MAX_PARAMS_BYTES, check_size, validate_record

NOT_SIGNED = ("signature", "log", "slug")
"""Fields a client may send back from a read; provmark sets them itself."""


def validate_one(data: Any) -> dict[str, Any]:
    """The unsigned draft of one record as the writer will sign it; ``RecordError``."""
    if not isinstance(data, Mapping):
        raise RecordError("<record>", "each record must be a JSON object")
    clean = {k: v for k, v in data.items() if k not in NOT_SIGNED}
    check_json(clean)
    draft = validate_record(clean).payload_dict()
    if "params" in draft:  # the exact canonical check, encoded once for the writer
        raw = check_size("params", draft["params"], MAX_PARAMS_BYTES)
        draft["params"] = Fragment(draft["params"], raw)
    return draft


def validate_batch(records: Sequence[Any]) -> list[dict[str, Any]]:
    """Drafts of every record, or :class:`InvalidBatch` naming each invalid one."""
    drafts: list[dict[str, Any]] = []
    errors: list[tuple[str, str]] = []
    first_seen: dict[str, int] = {}
    for i, data in enumerate(records):
        try:
            draft = validate_one(data)
        except RecordError as exc:
            field = f"[{i}]" if exc.field == "<record>" else f"[{i}].{exc.field}"
            errors.append((field, exc.reason))
            continue
        rid = draft["record_id"]
        if rid in first_seen:
            errors.append(
                (f"[{i}].record_id", f"duplicate of [{first_seen[rid]}] in this batch ({rid})")
            )
            continue
        first_seen[rid] = i
        drafts.append(draft)
    if errors:
        raise InvalidBatch(errors, len(records))
    return drafts
