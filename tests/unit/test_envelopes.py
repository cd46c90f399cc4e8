"""JWS and DSSE envelopes of records, checked with independent libraries.

joserfc verifies our compact JWS; securesystemslib verifies our DSSE envelopes
(and signs ones we must accept). Both for Ed25519 and ES256, plus tampering.
"""

from __future__ import annotations

import base64
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from joserfc import jws
from joserfc.errors import BadSignatureError
from joserfc.jwk import ECKey, OKPKey
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError as SslibVerificationError
from securesystemslib.signer import CryptoSigner, SSlibKey

from provmark.canonical import canonical_bytes
from provmark.crypto.envelopes import (
    INTOTO_PAYLOAD_TYPE,
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    pae,
    predicate,
    record_envelope,
    record_jws,
    sign_dsse,
    sign_jws,
    statement,
    subject_name,
    verify_dsse,
    verify_jws,
    verify_statement,
)
from provmark.crypto.keys import LocalSigner, key_id_for, verify_record_signature
from provmark.errors import RecordError, VerificationError

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
sys.path.insert(0, str(GOLDEN))
import make_golden as g  # noqa: E402

ALGS = ["Ed25519", "ES256"]


def jose_key(alg: str) -> OKPKey | ECKey:
    pem = g.signer(alg).public_key_pem()
    return OKPKey.import_key(pem) if alg == "Ed25519" else ECKey.import_key(pem)


def jose_verify(token: str, alg: str) -> Any:
    jose_alg = "EdDSA" if alg == "Ed25519" else "ES256"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc flags EdDSA as superseded by RFC 9864
        return jws.deserialize_compact(token, jose_key(alg), algorithms=[jose_alg])


def sslib_key(alg: str) -> SSlibKey:
    s = g.signer(alg)
    pub = serialization.load_pem_public_key(s.public_key_pem().encode())
    return SSlibKey.from_crypto(pub, keyid=s.key_id)  # type: ignore[arg-type]


def root() -> tuple[Any, bytes]:
    return g.signed()[0]


# ---------------------------------------------------------------- JWS


@pytest.mark.parametrize("alg", ALGS)
def test_jws_verifies_with_joserfc(alg: str) -> None:
    _, payload = root()
    token = record_jws(payload, g.signer(alg))
    obj = jose_verify(token, alg)
    assert obj.payload == payload  # the stored bytes, verbatim
    assert obj.protected["kid"] == g.signer(alg).key_id
    assert obj.protected["alg"] == ("EdDSA" if alg == "Ed25519" else "ES256")
    opened = verify_jws(token, g.public_key(alg))
    assert opened.payload == payload and opened.key_id == g.signer(alg).key_id


@pytest.mark.parametrize("alg", ALGS)
def test_we_verify_joserfc_tokens(alg: str) -> None:
    """A token made by joserfc from the same key verifies with ours (interop both ways)."""
    s = g.signer(alg)
    key = s.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    priv = OKPKey.import_key(key) if alg == "Ed25519" else ECKey.import_key(key)
    jose_alg = "EdDSA" if alg == "Ed25519" else "ES256"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        token = jws.serialize_compact(
            {"alg": jose_alg, "kid": s.key_id}, b'{"a":1}', priv, algorithms=[jose_alg]
        )
    assert verify_jws(token, g.public_key(alg)).payload == b'{"a":1}'


@pytest.mark.parametrize("alg", ALGS)
def test_tampered_jws_fails_both(alg: str) -> None:
    _, payload = root()
    token = record_jws(payload, g.signer(alg))
    bad = g.tamper_text(token).strip()
    with pytest.raises(BadSignatureError):
        jose_verify(bad, alg)
    with pytest.raises(VerificationError) as exc:
        verify_jws(bad, g.public_key(alg))
    assert exc.value.check == "jws"


def test_fully_specified_alg() -> None:
    token = sign_jws(b"{}", g.signer(), fully_specified=True)
    assert verify_jws(token, g.public_key()).header["alg"] == "Ed25519"


def test_jws_golden_files() -> None:
    _, payload = root()
    golden = (GOLDEN / "record-ed25519.jws").read_text().strip()
    assert record_jws(payload, g.signer()) == golden  # Ed25519 is deterministic
    assert (GOLDEN / "record.payload.json").read_bytes().strip() == payload
    for alg in ALGS:
        name = alg.lower()
        good = (GOLDEN / f"record-{name}.jws").read_text().strip()
        assert verify_jws(good, g.public_key(alg)).payload == payload
        jose_verify(good, alg)
        bad = (GOLDEN / f"record-{name}.tampered.jws").read_text().strip()
        with pytest.raises(VerificationError):
            verify_jws(bad, g.public_key(alg))
        with pytest.raises(BadSignatureError):
            jose_verify(bad, alg)


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("a.b", "3 parts"),
        ("!!.e30.AA", "base64url"),
        (f"{b64u(b'[1]')}.e30.AA", "JSON object"),
        (f"{b64u(b'{}')}=.e30.AA", "unpadded"),
        (f"{b64u(b'not json')}.e30.AA", "not JSON"),
        (f"{b64u(json.dumps({'alg': 'none'}).encode())}.e30.", "not accepted"),
        (f"{b64u(json.dumps({'alg': 'HS256'}).encode())}.e30.AA", "not accepted"),
        (f"{b64u(json.dumps({'alg': 'EdDSA', 'crit': ['x']}).encode())}.e30.AA", "critical"),
        (f"{b64u(json.dumps({'alg': 'EdDSA', 'kid': 5}).encode())}.e30.AA", "kid"),
    ],
)
def test_jws_bad_input(token: str, reason: str) -> None:
    with pytest.raises(VerificationError, match=reason):
        verify_jws(token, g.public_key())


def test_jws_wrong_and_unknown_keys() -> None:
    _, payload = root()
    token = record_jws(payload, g.signer())
    other = LocalSigner(Ed25519PrivateKey.from_private_bytes(b"\x09" * 32))
    with pytest.raises(VerificationError, match="not among the trusted keys"):
        verify_jws(token, other.private_key.public_key())  # type: ignore[arg-type]
    header = {"alg": "EdDSA", "kid": g.signer("ES256").key_id}
    head = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    with pytest.raises(VerificationError, match="does not fit"):
        verify_jws(f"{head}.e30.AA", g.public_key("ES256"))


def test_jws_without_kid_tries_each_key() -> None:
    s = g.signer()
    header = base64.urlsafe_b64encode(b'{"alg":"EdDSA"}').rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(b"{}").rstrip(b"=").decode()
    sig = base64.urlsafe_b64encode(s.sign(f"{header}.{body}".encode())).rstrip(b"=").decode()
    keys = [g.public_key("ES256"), g.public_key()]
    assert verify_jws(f"{header}.{body}.{sig}", keys).key_id == s.key_id


# ---------------------------------------------------------------- DSSE


def test_pae_matches_the_spec_example() -> None:
    # DSSE protocol.md: PAE("http://example.com/HelloWorld", "hello world")
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    assert pae("t", b"x") == Envelope(b"x", "t", {}).pae()


@pytest.mark.parametrize("alg", ALGS)
def test_dsse_verifies_with_securesystemslib(alg: str) -> None:
    record, payload = root()
    env = record_envelope(record, g.signer(alg), payload=payload)
    assert env["payloadType"] == INTOTO_PAYLOAD_TYPE
    accepted = Envelope.from_dict(json.loads(json.dumps(env))).verify([sslib_key(alg)], 1)
    assert set(accepted) == {g.signer(alg).key_id}
    body = verify_statement(env, g.public_key(alg))
    assert body["_type"] == STATEMENT_TYPE
    assert body["predicateType"] == PREDICATE_TYPE
    assert body["subject"] == [{"name": record.slug, "digest": {"sha256": record.output.sha256}}]


@pytest.mark.parametrize("alg", ALGS)
def test_tampered_dsse_fails_both(alg: str) -> None:
    record, payload = root()
    env = record_envelope(record, g.signer(alg), payload=payload)
    bad = json.loads(g.tamper_text(json.dumps(env)))
    with pytest.raises(SslibVerificationError):
        Envelope.from_dict(json.loads(json.dumps(bad))).verify([sslib_key(alg)], 1)
    with pytest.raises(VerificationError) as exc:
        verify_dsse(bad, g.public_key(alg))
    assert exc.value.check == "dsse"
    # a changed payloadType breaks the PAE too
    retyped = dict(env, payloadType="application/json")
    with pytest.raises(VerificationError):
        verify_dsse(retyped, g.public_key(alg), payload_type=None)


@pytest.mark.parametrize("alg", ALGS)
def test_we_verify_securesystemslib_envelopes(alg: str) -> None:
    key = g.ED_KEY if alg == "Ed25519" else g.EC_KEY
    public = sslib_key(alg)
    env = Envelope(b'{"hello":"world"}', INTOTO_PAYLOAD_TYPE, {})
    env.sign(CryptoSigner(key, public))
    opened = verify_dsse(env.to_dict(), g.public_key(alg))
    assert opened.json() == {"hello": "world"}


def test_dsse_golden_files() -> None:
    record, payload = root()
    golden = json.loads((GOLDEN / "record-ed25519.dsse.json").read_text())
    assert record_envelope(record, g.signer(), payload=payload) == golden
    for alg in ALGS:
        name = alg.lower()
        good = json.loads((GOLDEN / f"record-{name}.dsse.json").read_text())
        verify_statement(good, g.public_key(alg))
        Envelope.from_dict(good).verify([sslib_key(alg)], 1)
        bad = json.loads((GOLDEN / f"record-{name}.tampered.dsse.json").read_text())
        with pytest.raises(VerificationError):
            verify_statement(bad, g.public_key(alg))
        with pytest.raises(SslibVerificationError):
            Envelope.from_dict(bad).verify([sslib_key(alg)], 1)


def test_dsse_untrusted_signers_are_ignored() -> None:
    other = LocalSigner(Ed25519PrivateKey.from_private_bytes(b"\x07" * 32))
    env = sign_dsse(b"{}", "application/json", other)
    env["signatures"].append(sign_dsse(b"{}", "application/json", g.signer())["signatures"][0])
    assert verify_dsse(env, g.public_key(), payload_type=None).key_id == g.signer().key_id
    env["signatures"].pop()
    with pytest.raises(VerificationError, match="no signature by a trusted key"):
        verify_dsse(env, g.public_key(), payload_type=None)


@pytest.mark.parametrize(
    ("envelope", "reason"),
    [
        ("not json", "not JSON"),
        ([], "not a JSON object"),
        ({"payload": "e30="}, "no payloadType"),
        ({"payload": "e30=", "payloadType": "x/y", "signatures": []}, "expected"),
        ({"payload": "***", "payloadType": INTOTO_PAYLOAD_TYPE, "signatures": []}, "base64"),
        (
            {"payload": "e30=", "payloadType": INTOTO_PAYLOAD_TYPE, "signatures": []},
            "no signatures",
        ),
        (
            {"payload": "e30=", "payloadType": INTOTO_PAYLOAD_TYPE, "signatures": ["x"]},
            "not a JSON object",
        ),
    ],
)
def test_dsse_bad_input(envelope: Any, reason: str) -> None:
    with pytest.raises(VerificationError, match=reason):
        verify_dsse(envelope, g.public_key())


def test_es256_dsse_signature_is_der() -> None:
    env = sign_dsse(b"{}", "application/json", g.signer("ES256"))
    sig = base64.b64decode(env["signatures"][0]["sig"])
    assert sig[0] == 0x30 and len(sig) != 64  # a DER SEQUENCE, not raw r||s
    pub = g.EC_KEY.public_key()
    pub.verify(sig, pae("application/json", b"{}"), ec.ECDSA(hashes.SHA256()))


# ---------------------------------------------------------------- the statement


def test_predicate_keeps_the_record_signature_verifiable() -> None:
    record, payload = root()
    body = json.loads(statement(record, payload))
    pred = body["predicate"]
    assert pred["signature"]["key_id"] == g.signer().key_id and pred["log"]["index"] == 0
    unsigned = {k: v for k, v in pred.items() if k not in ("signature", "log")}
    assert canonical_bytes(unsigned) == payload
    verify_record_signature(g.public_key(), canonical_bytes(unsigned), pred["signature"]["sig"])


def test_statement_is_canonical_and_deterministic() -> None:
    record, payload = root()
    raw = statement(record, payload)
    assert raw == canonical_bytes(json.loads(raw)) == statement(record, payload)


def test_subject_name_from_output_uri() -> None:
    child = g.signed()[1][0]
    assert subject_name(child) == "translation.txt"
    assert subject_name(root()[0]) == root()[0].slug


def test_record_without_output_is_refused() -> None:
    failed = g.signed()[2][0]
    with pytest.raises(RecordError) as exc:
        record_envelope(failed, g.signer())
    assert exc.value.field == "output.sha256"


def test_statement_checks() -> None:
    record, payload = root()
    env = sign_dsse(b'{"_type":"x"}', INTOTO_PAYLOAD_TYPE, g.signer())
    with pytest.raises(VerificationError, match="not an in-toto Statement"):
        verify_statement(env, g.public_key())
    body = json.loads(statement(record, payload))
    body["subject"][0]["digest"]["sha256"] = "0" * 64
    env = sign_dsse(canonical_bytes(body), INTOTO_PAYLOAD_TYPE, g.signer())
    with pytest.raises(VerificationError, match="subject digest"):
        verify_statement(env, g.public_key())
    env = record_envelope(
        record, g.signer(), payload=payload, predicate_type="https://example.com/x"
    )
    with pytest.raises(VerificationError, match="predicateType"):
        verify_statement(env, g.public_key())


def test_record_jws_of_a_record_object() -> None:
    record, _ = root()
    token = record_jws(record, g.signer())
    assert verify_jws(token, g.public_key()).payload == record.payload()
    assert predicate(record)["record_id"] == record.record_id
    assert key_id_for(g.ED_KEY.public_key()) == g.signer().key_id


def test_predicate_schema_is_published_and_matches() -> None:
    import jsonschema

    from provmark.export.intoto import predicate_schema, verify_lines

    published = json.loads(
        (GOLDEN.parent.parent / "docs" / "schema" / "predicate-provenance-v1.json").read_text()
    )
    assert published == predicate_schema(), "regenerate docs/schema/predicate-provenance-v1.json"
    golden = (GOLDEN / "export.intoto.jsonl").read_bytes()
    assert g.build_deterministic()["export.intoto.jsonl"] == golden
    statements = verify_lines(GOLDEN / "export.intoto.jsonl", g.public_key())
    assert len(statements) == 4
    # the v2 record: one subject per output
    assert [s["digest"]["sha256"] for s in statements[-1]["subject"]] == [
        g.sha(g.variant(1)),
        g.sha(g.variant(2)),
    ]
    for line in golden.splitlines():
        Envelope.from_dict(json.loads(line)).verify([sslib_key("Ed25519")], 1)
    for body in statements:
        jsonschema.Draft202012Validator(published).validate(body["predicate"])
    with pytest.raises(VerificationError, match="line 2"):
        verify_lines(GOLDEN / "export.intoto.tampered.jsonl", g.public_key())
    with pytest.raises(VerificationError, match="line 4"):
        verify_lines(GOLDEN / "export.intoto.tampered-subject.jsonl", g.public_key())
    with pytest.raises(VerificationError, match="line 1: not JSON"):
        verify_lines(b"{oops\n", g.public_key())
