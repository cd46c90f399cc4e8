from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from provmark.canonical import canonical_bytes
from provmark.errors import RecordError, SchemaVersionError
from provmark.record import (
    RecordV1,
    is_record_id,
    is_slug,
    json_schema,
    log_entry,
    new_record_id,
    record_from_payload,
    slug_for,
    validate_record,
)

SCHEMAS = Path(__file__).parents[2] / "docs" / "schema"
SCHEMA = SCHEMAS / "record-v1.json"


def minimal(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "record_id": new_record_id(),
        "generated_at": "2026-11-25T15:46:02.123456Z",
        "model": {"name": "acme/summarizer", "version": "3.2"},
        "output": {"sha256": "ab" * 32, "size": 3},
    }
    data.update(over)
    return data


def test_v1_schema_file_matches_the_frozen_v1_model() -> None:
    on_disk = json.loads(SCHEMA.read_text())
    generated = RecordV1.model_json_schema()
    for key in ("properties", "required", "$defs"):
        assert on_disk.get(key) == generated.get(key), f"record-v1.json is frozen: {key} changed"
    assert on_disk == json_schema("1")


def test_v2_schema_file_is_current() -> None:
    on_disk = json.loads((SCHEMAS / "record-v2.json").read_text())
    assert on_disk == json_schema("2"), "run `make schema`: record-v2.json changed"


def test_records_validate_against_the_published_schema() -> None:
    schema = json.loads(SCHEMA.read_text())
    record = validate_record(minimal(params={"temperature": 0.2}, tags={"app": "x"}))
    jsonschema.validate(record.model_dump(mode="json", exclude_none=True), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"record_id": "x"}, schema)


def test_uuid7_is_time_ordered_and_slugged() -> None:
    a = new_record_id()
    time.sleep(0.002)
    b = new_record_id()
    assert is_record_id(a) and is_record_id(b)
    assert a < b
    slug = slug_for(a)
    assert is_slug(slug) and slug.endswith(a[-6:])
    assert slug[3:11] == time.strftime("%Y%m%d", time.gmtime())


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"generated_at": "yesterday"}, "generated_at"),
        ({"generated_at": "2026-11-25T15:46:02"}, "generated_at"),
        ({"record_id": "not-a-uuid"}, "record_id"),
        ({"operation": "Has Spaces"}, "operation"),
        ({"output": {"sha256": "xyz"}}, "output.sha256"),
        ({"params": {"blob": "x" * 20000}}, "params"),
        ({"tags": {f"k{i}": "v" for i in range(100)}}, "tags"),
        ({"schema_version": "99"}, "schema_version"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_records_name_the_field(over: dict[str, Any], field: str) -> None:
    with pytest.raises(RecordError) as info:
        validate_record(minimal(**over))
    assert info.value.field.startswith(field)


def test_newer_schema_payload_is_refused_clearly() -> None:
    payload = canonical_bytes(minimal(schema_version="3"))
    with pytest.raises(SchemaVersionError, match="newer"):
        record_from_payload(payload)


def test_log_entry_is_the_jcs_of_record_and_signature() -> None:
    record = validate_record(minimal())
    sig = {"alg": "Ed25519", "key_id": "00" * 8, "sig": "AAAA"}
    entry = log_entry(record.payload(), sig)
    assert entry == canonical_bytes({"record": json.loads(record.payload()), "signature": sig})


@pytest.mark.parametrize("big", [1e20, 2.0**64])
def test_a_float_beyond_64_bits_reads_back(big: float) -> None:
    # RFC 8785 writes these floats as integers wider than 64 bits: the payload must still
    # read back (the property test below found it)
    payload = validate_record(minimal(params={"x": big})).payload()
    assert record_from_payload(payload).payload() == payload


json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False)
)
params = st.dictionaries(st.text(min_size=1, max_size=10), json_leaf, max_size=6)


@given(params=params, tags=st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=5))
def test_payload_round_trip(params: dict[str, Any], tags: dict[str, str]) -> None:
    record = validate_record(minimal(params=params, tags=tags))
    payload = record.payload()
    again = record_from_payload(payload)
    assert again.payload() == payload
    assert again.schema_version == "1"  # the lowest version that holds the record
