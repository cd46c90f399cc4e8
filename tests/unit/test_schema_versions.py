"""Schema evolution: v1 records keep reading and verifying; v2 adds multi-output generations."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import provmark
from provmark.canonical import canonical_bytes
from provmark.crypto.keys import LocalSigner, PublicKey, verify_record_signature
from provmark.errors import RecordError, SchemaVersionError
from provmark.record import (
    SCHEMA_VERSION,
    SUPPORTED_SCHEMA_VERSIONS,
    RecordV1,
    output_hashes,
    record_from_payload,
    upgrade,
    validate_record,
)
from provmark.verification.audit import audit

SCHEMAS = Path(__file__).parents[2] / "docs" / "schema"
A, B = "aa" * 32, "bb" * 32
# A v1 payload exactly as provmark 0.1.0 (record.py before v2) encoded it; signed by a
# fixed key below, it must verify for ever.
V1_PAYLOAD = (
    b'{"actor":{},"context":{"config":{},"gpu":[],"packages":{}},"extra":{},'
    b'"generated_at":"2026-01-05T10:00:00.000000Z",'
    b'"input":{"datasets":[]},"model":{"files":[],"name":"acme/summarizer","version":"3.2"},'
    b'"operation":"text_completion","output":{"sha256":"' + A.encode() + b'","size":3},'
    b'"params":{},"parents":[],"record_id":"019b8de4-5a00-7000-8000-000000000001",'
    b'"schema_version":"1","status":"ok","tags":{}}'
)
SEED = bytes(range(32))


def schema(version: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"record-v{version}.json").read_text())


def v2(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "record_id": provmark.record.new_record_id(),
        "generated_at": provmark.record.now_utc(),  # in the signing key's window
        "operation": "image_generation",
        "model": {"name": "acme/painter"},
        "outputs": [{"sha256": A, "size": 10}, {"sha256": B, "size": 12}],
    }
    data.update(over)
    return data


def test_versions() -> None:
    assert SCHEMA_VERSION == "2" and SUPPORTED_SCHEMA_VERSIONS == ("1", "2")


def test_old_v1_signature_still_verifies_after_upgrade() -> None:
    assert canonical_bytes(json.loads(V1_PAYLOAD)) == V1_PAYLOAD  # the stored bytes are canonical
    signer = LocalSigner(Ed25519PrivateKey.from_private_bytes(SEED))
    key = PublicKey(signer.key_id, signer.alg, signer.public_key_pem(), "2026-01-01T00:00:00Z")
    sig = base64.b64encode(signer.sign(V1_PAYLOAD)).decode()
    record = record_from_payload(
        V1_PAYLOAD, signature={"alg": "Ed25519", "key_id": key.key_id, "sig": sig}
    )
    assert record.schema_version == "1" and record.outputs == []
    assert record.payload() == V1_PAYLOAD  # re-encoding a v1 record adds nothing (no "outputs")
    verify_record_signature(key, V1_PAYLOAD, sig)
    view = upgrade(record)
    assert view.schema_version == "2" and [o.sha256 for o in view.outputs] == [A]
    assert view.all_outputs() == record.all_outputs()
    verify_record_signature(key, V1_PAYLOAD, sig)  # the view changed nothing stored


def test_v2_multi_output_record() -> None:
    record = validate_record(v2())
    assert record.schema_version == "2"
    assert record.output is not None and record.output.sha256 == A  # the primary output
    payload = json.loads(record.payload())
    assert output_hashes(payload) == [A, B]
    jsonschema.validate(payload, schema("2"))
    with pytest.raises(jsonschema.ValidationError, match="outputs"):
        jsonschema.validate(payload, schema("1"))  # a v1 reader refuses it, as it should
    assert upgrade(record) is record


def test_a_record_gets_the_lowest_version_that_holds_it() -> None:
    plain = v2(outputs=[], output={"sha256": A})
    del plain["outputs"]
    record = validate_record(plain)
    assert record.schema_version == "1"
    jsonschema.validate(json.loads(record.payload()), schema("1"))
    jsonschema.validate(json.loads(record.payload()), schema("2"))


@pytest.mark.parametrize(
    ("over", "field", "reason"),
    [
        ({"schema_version": "1"}, "outputs", "needs schema_version '2'"),
        ({"output": {"sha256": B}}, "outputs", "must equal outputs[0]"),
        ({"outputs": [{"sha256": "nothex"}]}, "outputs.0.sha256", "SHA-256"),
        ({"outputs": [{"sha256": A}] * 300}, "outputs", "at most 256"),
        ({"schema_version": "3"}, "schema_version", "newer than this provmark"),
    ],
)
def test_bad_v2_records_name_the_field(over: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(RecordError) as info:
        validate_record(v2(**over))
    assert info.value.field == field and reason in info.value.reason


def test_the_frozen_v1_model_refuses_v2_fields() -> None:
    with pytest.raises(ValueError, match="outputs"):
        RecordV1.model_validate(v2(schema_version="1"))
    with pytest.raises(ValueError, match="schema_version"):
        RecordV1.model_validate({**v2(), "outputs": None, "schema_version": "2"})


def test_newer_payloads_are_refused_clearly() -> None:
    with pytest.raises(SchemaVersionError, match="newer"):
        record_from_payload(canonical_bytes(v2(schema_version="3")))


def test_v1_and_v2_records_share_one_log_and_verify(tmp_path: Path) -> None:
    text = "a v1 summary"
    with provmark.open(tmp_path / "p.db", home=tmp_path / "home") as pm:
        with pm.record(model=provmark.Model("acme/summarizer"), input="doc") as rec:
            rec.set_output(text)
        [rid] = pm.ingest([v2()])
        pm.flush()
        old = pm.verify(text)
        assert old.record.schema_version == "1"
        stored = pm.get(rid)
        assert stored.schema_version == "2" and len(stored.all_outputs()) == 2
        assert audit(pm).ok
        found = pm.find(output=A)
        assert [r.record_id for r in found.records] == [rid]  # primary output is indexed
    sha = hashlib.sha256(text.encode()).hexdigest()
    assert sha in output_hashes(json.loads(old.payload))
