"""Every verification check fails on the tampering it exists for."""

from __future__ import annotations

import base64
import copy
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import provmark
from provmark import Model, Provmark, VerificationError
from provmark.bundle import verify_bundle
from provmark.capture.hashing import digest_output
from provmark.log.note import Checkpoint, NoteVerifier


def make(pm: Provmark, n: int = 5) -> list[str]:
    model = Model("acme/gen", version="1")
    ids = []
    for i in range(n):
        with pm.record(model=model, input=f"prompt {i}") as rec:
            rec.set_output(f"output {i}")
        ids.append(rec.record_id or "")
    pm.flush()
    return ids


def check_of(exc: pytest.ExceptionInfo[VerificationError]) -> str:
    return exc.value.check


def test_original_passes_edited_fails(pm: Provmark) -> None:
    make(pm)
    v = pm.verify("output 3")
    assert [c.name for c in v.checks] == [
        "output_hash",
        "record_signature",
        "key_validity",
        "checkpoint_signature",
        "inclusion_proof",
    ]
    with pytest.raises(VerificationError) as info:
        pm.verify("output 3!")
    assert check_of(info) == "output_hash"


def test_content_against_a_named_record(pm: Provmark) -> None:
    ids = make(pm)
    with pytest.raises(VerificationError, match="differs from the recorded") as info:
        pm.verify("output 1", record_id=ids[0])
    assert check_of(info) == "output_hash"
    assert (
        pm.verify(
            "output 0", record_id=provmark.Record.model_validate(pm.get(ids[0]).model_dump()).slug
        ).record_id
        == ids[0]
    )


def _sql(db: Path, sql: str, *args: Any) -> None:
    con = sqlite3.connect(db)
    con.execute(sql, args)
    con.commit()
    con.close()


def test_altered_payload_fails_signature(pm: Provmark, db_path: Path) -> None:
    ids = make(pm)
    row = pm.store.get(ids[2])
    assert row is not None
    forged = row.payload.replace(b'"version":"1"', b'"version":"2"')
    _sql(db_path, "UPDATE records SET payload = ? WHERE record_id = ?", forged, ids[2])
    with pytest.raises(VerificationError) as info:
        pm.verify("output 2")
    assert check_of(info) == "record_signature"


def test_altered_index_column_fails_output_hash(pm: Provmark, db_path: Path) -> None:
    ids = make(pm)
    fake = digest_output("forged text").sha256
    _sql(db_path, "UPDATE records SET output_sha256 = ? WHERE record_id = ?", fake, ids[1])
    with pytest.raises(VerificationError) as info:
        pm.verify("forged text")
    assert check_of(info) == "output_hash"


def test_re_signed_with_foreign_key_fails(pm: Provmark, db_path: Path) -> None:
    ids = make(pm)
    row = pm.store.get(ids[0])
    assert row is not None
    sig = dict(row.signature, key_id="00" * 8)
    _sql(db_path, "UPDATE records SET signature = ? WHERE record_id = ?", json.dumps(sig), ids[0])
    with pytest.raises(VerificationError, match="unknown key id") as info:
        pm.verify("output 0")
    assert check_of(info) == "record_signature"


def test_tampered_leaf_fails_inclusion(pm: Provmark, db_path: Path) -> None:
    make(pm)
    _sql(db_path, "UPDATE nodes SET hash = zeroblob(32) WHERE level = 0 AND idx = 4")
    with pytest.raises(VerificationError) as info:
        pm.verify("output 3")  # its proof passes through leaf 4
    assert check_of(info) == "inclusion_proof"


def test_forged_checkpoint_fails(pm: Provmark, db_path: Path) -> None:
    make(pm)
    other = Ed25519PrivateKey.generate()
    cp = pm.store.latest_checkpoint()
    assert cp is not None
    forged = Checkpoint(pm.store.origin, cp.size, cp.root).sign(pm.store.origin, other)
    _sql(db_path, "UPDATE checkpoints SET note = ? WHERE size = ?", forged, cp.size)
    with pytest.raises(VerificationError) as info:
        pm.verify("output 1")
    assert check_of(info) == "checkpoint_signature"


def test_consistency_with_an_older_checkpoint(pm: Provmark) -> None:
    make(pm, 3)
    old = pm.latest_checkpoint()
    assert old is not None
    make(pm, 4)
    v = pm.verify("output 1", trusted_checkpoint=(old.size, old.root))
    assert v.checks[-1].name == "consistency"
    with pytest.raises(VerificationError) as info:
        pm.verify("output 1", trusted_checkpoint=(old.size, b"\x00" * 32))
    assert check_of(info) == "consistency"


def test_key_rotation_keeps_old_records_verifiable(pm: Provmark) -> None:
    make(pm, 2)
    old_key = pm.signer.key_id
    pm.rotate_keys()
    with pm.record(model=Model("m"), input="x") as rec:
        rec.set_output("after rotation")
    assert pm.verify("output 0").record.signature.key_id == old_key  # type: ignore[union-attr]
    assert pm.verify("after rotation").record.signature.key_id == pm.signer.key_id  # type: ignore[union-attr]


# ------------------------------------------------------------------ bundles


@pytest.fixture
def bundle(pm: Provmark) -> dict[str, Any]:
    ids = make(pm, 6)
    return pm.bundle(ids[2])


def test_bundle_verifies_offline(bundle: dict[str, Any], pm: Provmark) -> None:
    sha = digest_output("output 2").sha256
    pm.close()  # no database from here on
    v = verify_bundle(bundle, content_sha256=sha)
    assert v.record.output and v.record.output.sha256 == sha
    assert "not pinned" in v.checks[1].detail
    with pytest.raises(VerificationError) as info:
        verify_bundle(bundle, content_sha256=digest_output("output 2.").sha256)
    assert check_of(info) == "output_hash"


def test_bundle_with_pinned_keys(bundle: dict[str, Any], pm: Provmark) -> None:
    keys = pm.public_keys()
    v = verify_bundle(bundle, keys=keys, log_key=pm.log_verifier.key_string())
    assert "pinned" in v.checks[0].detail or "pinned" in v.checks[1].detail
    stranger = NoteVerifier.from_public_key(
        pm.store.origin, Ed25519PrivateKey.generate().public_key()
    )
    with pytest.raises(VerificationError) as info:
        verify_bundle(bundle, keys=keys, log_key=stranger.key_string())
    assert check_of(info) == "checkpoint_signature"


@pytest.mark.parametrize(
    ("path", "value", "check"),
    [
        (("record", "model", "name"), "someone/else", "inclusion_proof"),
        (("signature", "sig"), base64.b64encode(b"\x00" * 64).decode(), "inclusion_proof"),
        (("log", "index"), 0, "inclusion_proof"),
        (("log", "proof"), [], "inclusion_proof"),
        (("log", "origin"), "evil.example/log", "checkpoint_signature"),
        (("media_type",), "application/json", "bundle_format"),
        (("key", "not_before"), "2999-01-01T00:00:00.000000Z", "key_validity"),
    ],
)
def test_tampered_bundle_names_the_check(
    bundle: dict[str, Any], path: tuple[str, ...], value: Any, check: str
) -> None:
    bad = copy.deepcopy(bundle)
    target = bad
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(VerificationError) as info:
        verify_bundle(bad)
    assert check_of(info) == check


def test_truncated_bundle_file(bundle: dict[str, Any], tmp_path: Path) -> None:
    text = json.dumps(bundle)
    path = tmp_path / "b.provmark.json"
    path.write_text(text[: len(text) // 2])
    with pytest.raises(VerificationError) as info:
        verify_bundle(provmark.load_bundle(path))
    assert check_of(info) == "bundle_format"


def test_resigned_record_with_matching_leaf_still_needs_the_key(bundle: dict[str, Any]) -> None:
    # an attacker edits the record and recomputes the leaf hash: the signature catches it
    from provmark.canonical import canonical_bytes
    from provmark.verify import leaf_hash_of

    bad = copy.deepcopy(bundle)
    bad["record"]["model"]["name"] = "forged"
    bad["log"]["leaf_hash"] = base64.b64encode(
        leaf_hash_of(canonical_bytes(bad["record"]), bad["signature"])
    ).decode()
    with pytest.raises(VerificationError) as info:
        verify_bundle(bad)
    assert check_of(info) == "record_signature"


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_single_bit_flip_in_a_bundle_fails(bundle: dict[str, Any], data: st.DataObject) -> None:
    raw = bytearray(json.dumps(bundle, sort_keys=True).encode())
    pos = data.draw(st.integers(0, len(raw) - 1))
    bit = data.draw(st.integers(0, 7))
    raw[pos] ^= 1 << bit
    try:
        flipped = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return  # not even JSON: rejected before any check
    if flipped == bundle:
        return  # the flip hit insignificant JSON (e.g. it changed an escape into the same char)
    with pytest.raises(VerificationError):
        verify_bundle(flipped)


# ------------------------------------------------------------------ pinned keys: every byte


def _pins(pm: Provmark) -> dict[str, Any]:
    return {"keys": pm.public_keys(), "log_key": pm.log_verifier.key_string()}


def test_pinned_bundle_fields_are_checked(bundle: dict[str, Any], pm: Provmark) -> None:
    pins = _pins(pm)
    assert verify_bundle(bundle, **pins).record_id == bundle["record"]["record_id"]
    stranger = NoteVerifier.from_public_key(
        pm.store.origin, Ed25519PrivateKey.generate().public_key()
    )
    other_pem = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    mutations: list[tuple[str, Any]] = [
        ("public_key", lambda b: b.__setitem__("public_key", other_pem)),
        ("key.not_before", lambda b: b["key"].__setitem__("not_before", "2000-01-01T00:00:00Z")),
        ("key.alg", lambda b: b["key"].__setitem__("alg", "ES256")),
        ("key.purpose", lambda b: b["key"].__setitem__("purpose", "log")),
        ("log.log_key", lambda b: b["log"].__setitem__("log_key", stranger.key_string())),
        ("log.tree_size", lambda b: b["log"].pop("tree_size")),
        ("revocations", lambda b: b.__setitem__("revocations", b["revocations"] + " ")),
    ]
    for where, change in mutations:
        bad = copy.deepcopy(bundle)
        change(bad)
        with pytest.raises(VerificationError):
            verify_bundle(bad, **pins)
        with pytest.raises(VerificationError):
            verify_bundle(bad)
        assert where  # each mutation named for the failure message above


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_single_bit_flip_in_a_pinned_bundle_fails(
    bundle: dict[str, Any], pm: Provmark, data: st.DataObject
) -> None:
    pins = _pins(pm)
    raw = bytearray(json.dumps(bundle, sort_keys=True).encode())
    pos = data.draw(st.integers(0, len(raw) - 1))
    bit = data.draw(st.integers(0, 7))
    raw[pos] ^= 1 << bit
    try:
        flipped = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return
    if flipped == bundle:
        return
    with pytest.raises(VerificationError):
        verify_bundle(flipped, **pins)


def test_every_field_of_a_pinned_bundle_is_covered(bundle: dict[str, Any], pm: Provmark) -> None:
    """Exhaustive over the bundle's fields: flipping the first bit of each string value and
    the lowest bit of each number fails with pinned keys."""
    pins = _pins(pm)

    def paths(obj: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if isinstance(obj, dict):
            return [p for k, v in obj.items() for p in paths(v, (*at, k))]
        if isinstance(obj, list):
            return [p for i, v in enumerate(obj) for p in paths(v, (*at, i))]
        return [at]

    found = paths(bundle)
    assert ("log", "tree_size") in found and ("public_key",) in found
    for path in found:
        bad = copy.deepcopy(bundle)
        target = bad
        for step in path[:-1]:
            target = target[step]
        value = target[path[-1]]
        if isinstance(value, bool) or value is None:
            target[path[-1]] = not value
        elif isinstance(value, int | float):
            target[path[-1]] = value + 1
        else:
            text = str(value)
            target[path[-1]] = chr(ord(text[0]) ^ 1) + text[1:] if text else "x"
        with pytest.raises(VerificationError):
            verify_bundle(bad, **pins)
