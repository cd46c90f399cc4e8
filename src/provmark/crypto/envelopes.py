"""Records in standard envelopes: compact JWS (RFC 7515) and DSSE / in-toto Statement v1.

* **JWS**: the payload is the record payload bytes verbatim (RFC 8785 JSON), the
  protected header is ``{"alg", "kid", "cty"}`` with ``alg`` ``EdDSA`` (RFC 8037;
  ``Ed25519`` from RFC 9864 on request) or ``ES256``, ``kid`` the provmark key id.
  ES256 signatures are raw ``r || s`` as JWS requires.
* **DSSE**: the signature is over ``PAE(payloadType, payload)``; the payload is
  an in-toto Statement v1 whose subject is the output (name + sha256) and whose
  predicate is the record (payload fields plus ``signature`` and ``log``), encoded
  once with RFC 8785 and signed verbatim. ES256 signatures are DER, as
  securesystemslib and sigstore expect; Ed25519 signatures are the raw 64 bytes.

Every failed check raises ``VerificationError("jws" | "dsse", reason)``.
"""

from __future__ import annotations

import base64
import binascii
import json
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import urlparse

from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from ..canonical import canonical_bytes
from ..errors import RecordError, VerificationError
from ..record import Record
from .keys import ED25519, ES256, PublicKey, PublicKeyObject, Signer, key_id_for, verify_raw

JWS_CONTENT_TYPE = "vnd.provmark.record+json"
INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://provmark.dev/provenance/v1"

_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_JWS_ALGS: Mapping[str, str] = MappingProxyType(
    {"EdDSA": ED25519, "Ed25519": ED25519, "ES256": ES256}
)

Keys = PublicKey | PublicKeyObject | Iterable[PublicKey | PublicKeyObject]
"""What the verify functions accept: one key or several, provmark or ``cryptography`` keys."""


@dataclass(frozen=True)
class Opened:
    """A verified envelope: what was signed and by which key."""

    payload: bytes
    key_id: str
    header: dict[str, Any]  # JWS protected header, or {"payloadType": ...} for DSSE

    def json(self) -> Any:
        return json.loads(self.payload)


# ---------------------------------------------------------------- keys


def _key_table(keys: Keys) -> dict[str, PublicKeyObject]:
    if isinstance(keys, PublicKey | ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey):
        keys = [keys]
    table: dict[str, PublicKeyObject] = {}
    for k in keys:
        if isinstance(k, PublicKey):
            table[k.key_id] = k.key()
        else:
            table[key_id_for(k)] = k
    return table


def _alg_of_key(key: PublicKeyObject) -> str:
    return ED25519 if isinstance(key, ed25519.Ed25519PublicKey) else ES256


def _pick(
    table: dict[str, PublicKeyObject], kid: str | None, check: str
) -> list[tuple[str, PublicKeyObject]]:
    if kid:
        if kid not in table:
            raise VerificationError(
                check, f"signed by key {kid}, which is not among the trusted keys"
            )
        return [(kid, table[kid])]
    if not table:
        raise VerificationError(check, "no trusted keys were given")
    return list(table.items())


# ---------------------------------------------------------------- base64


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str, what: str) -> bytes:
    if "=" in text:
        raise VerificationError("jws", f"{what} is not unpadded base64url")
    if not _B64URL.match(text) or len(text) % 4 == 1:
        raise VerificationError("jws", f"{what} is not valid base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64_any(text: Any, what: str) -> bytes:
    """DSSE: standard base64, URL-safe accepted too (as the spec asks of verifiers)."""
    if not isinstance(text, str) or not text.isascii():
        raise VerificationError("dsse", f"{what} is not a base64 string")
    alt = text.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(alt + "=" * (-len(alt) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise VerificationError("dsse", f"{what} is not valid base64") from None


# ---------------------------------------------------------------- JWS


def jws_alg(signer_alg: str, *, fully_specified: bool = False) -> str:
    """The JWS ``alg`` for a provmark key algorithm (``EdDSA`` or RFC 9864 ``Ed25519``)."""
    if signer_alg == ED25519:
        return "Ed25519" if fully_specified else "EdDSA"
    if signer_alg == ES256:
        return "ES256"
    raise VerificationError("jws", f"no JWS algorithm for key algorithm {signer_alg!r}")


def sign_jws(payload: bytes, signer: Signer, *, fully_specified: bool = False) -> str:
    """Compact JWS of ``payload`` (signed verbatim) with a provmark signer."""
    header = {
        "alg": jws_alg(signer.alg, fully_specified=fully_specified),
        "cty": JWS_CONTENT_TYPE,
        "kid": signer.key_id,
    }
    signing_input = f"{b64url(canonical_bytes(header))}.{b64url(payload)}"
    sig = signer.sign(signing_input.encode("ascii"))
    return f"{signing_input}.{b64url(sig)}"


def record_jws(record: Record | bytes, signer: Signer, *, fully_specified: bool = False) -> str:
    """Compact JWS of a record: pass the stored payload bytes to sign them verbatim."""
    payload = record if isinstance(record, bytes) else record.payload()
    return sign_jws(payload, signer, fully_specified=fully_specified)


def verify_jws(token: str, keys: Keys) -> Opened:
    """Verify a compact JWS against trusted keys; return the payload and header."""
    if not isinstance(token, str):
        raise VerificationError("jws", "a compact JWS is a string")
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise VerificationError("jws", f"a compact JWS has 3 parts, this has {len(parts)}")
    raw_header = _b64url_decode(parts[0], "protected header")
    try:
        header = json.loads(raw_header)
    except ValueError:
        raise VerificationError("jws", "protected header is not JSON") from None
    if not isinstance(header, dict):
        raise VerificationError("jws", "protected header is not a JSON object")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in _JWS_ALGS:
        raise VerificationError("jws", f"algorithm {alg!r} is not accepted (EdDSA, Ed25519, ES256)")
    if "crit" in header or header.get("b64") is False:
        raise VerificationError("jws", "critical header extensions are not supported")
    payload = _b64url_decode(parts[1], "payload")
    sig = _b64url_decode(parts[2], "signature")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise VerificationError("jws", "kid is not a string")
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    for key_id, key in _pick(_key_table(keys), kid, "jws"):
        if _alg_of_key(key) != _JWS_ALGS[alg]:
            if kid:
                raise VerificationError(
                    "jws", f"alg {alg} does not fit key {key_id} ({_alg_of_key(key)})"
                )
            continue
        if verify_raw(key, signing_input, sig):
            return Opened(payload=payload, key_id=key_id, header=header)
    raise VerificationError("jws", "signature does not match the header and payload")


# ---------------------------------------------------------------- DSSE


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(t), t, len(payload), payload)


def _raw_to_der(sig: bytes) -> bytes:
    return encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))


def _der_to_raw(sig: bytes) -> bytes | None:
    try:
        r, s = decode_dss_signature(sig)
    except ValueError:
        return None
    if r >= 1 << 256 or s >= 1 << 256:
        return None
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def sign_dsse(payload: bytes, payload_type: str, signer: Signer) -> dict[str, Any]:
    """A DSSE envelope of ``payload`` with one signature by ``signer``."""
    sig = signer.sign(pae(payload_type, payload))
    if signer.alg == ES256:
        sig = _raw_to_der(sig)
    return {
        "payload": base64.b64encode(payload).decode("ascii"),
        "payloadType": payload_type,
        "signatures": [{"keyid": signer.key_id, "sig": base64.b64encode(sig).decode("ascii")}],
    }


def verify_dsse(
    envelope: Mapping[str, Any] | str | bytes,
    keys: Keys,
    *,
    payload_type: str | None = INTOTO_PAYLOAD_TYPE,
) -> Opened:
    """Verify a DSSE envelope: at least one signature by a trusted key must hold.

    Signatures by keys that are not trusted are ignored (DSSE allows several
    signers). ``payload_type=None`` accepts any payload type.
    """
    if isinstance(envelope, str | bytes):
        try:
            envelope = json.loads(envelope)
        except ValueError:
            raise VerificationError("dsse", "envelope is not JSON") from None
    if not isinstance(envelope, Mapping):
        raise VerificationError("dsse", "envelope is not a JSON object")
    ptype = envelope.get("payloadType")
    if not isinstance(ptype, str):
        raise VerificationError("dsse", "envelope has no payloadType")
    if payload_type is not None and ptype != payload_type:
        raise VerificationError("dsse", f"payloadType is {ptype!r}, expected {payload_type!r}")
    payload = _b64_any(envelope.get("payload"), "payload")
    sigs = envelope.get("signatures")
    if not isinstance(sigs, list) or not sigs:
        raise VerificationError("dsse", "envelope has no signatures")
    table = _key_table(keys)
    message = pae(ptype, payload)
    for entry in sigs:
        if not isinstance(entry, Mapping):
            raise VerificationError("dsse", "a signature entry is not a JSON object")
        kid = entry.get("keyid") or None
        if kid is not None and kid not in table:
            continue
        sig = _b64_any(entry.get("sig"), "signature")
        for key_id, key in _pick(table, kid, "dsse"):
            if _dsse_holds(key, message, sig):
                return Opened(payload=payload, key_id=key_id, header={"payloadType": ptype})
    raise VerificationError("dsse", "no signature by a trusted key matches the payload")


def _dsse_holds(key: PublicKeyObject, message: bytes, sig: bytes) -> bool:
    if isinstance(key, ed25519.Ed25519PublicKey):
        return verify_raw(key, message, sig)
    raw = _der_to_raw(sig)
    if raw is None and len(sig) == 64:
        raw = sig  # some tools put raw r || s in DSSE; accept it
    return raw is not None and verify_raw(key, message, raw)


# ---------------------------------------------------------------- in-toto Statement


def subject_name(record: Record) -> str:
    """The output's file name when its URI has one, else the record slug."""
    if record.output and record.output.uri:
        name = posixpath.basename(urlparse(record.output.uri).path)
        if name:
            return name
    return record.slug


def subjects(record: Record) -> list[dict[str, Any]]:
    """One in-toto subject per output (v2 records have several): the file name of its
    URI, else the record slug (``<slug>/<n>`` for the n-th output after the first)."""
    out = []
    for n, o in enumerate(record.all_outputs()):
        name = posixpath.basename(urlparse(o.uri).path) if o.uri else ""
        out.append(
            {
                "name": name or (record.slug if n == 0 else f"{record.slug}/{n}"),
                "digest": {"sha256": o.sha256},
            }
        )
    return out


def predicate(record: Record, payload: bytes | None = None) -> dict[str, Any]:
    """The record as an in-toto predicate: payload fields plus ``signature`` and ``log``.

    Give the stored ``payload`` bytes when you have them: then removing
    ``signature`` and ``log`` and re-encoding with RFC 8785 gives back exactly the
    bytes the record signature covers.
    """
    body: dict[str, Any] = json.loads(payload) if payload is not None else record.payload_dict()
    if record.signature is not None:
        body["signature"] = record.signature.model_dump()
    if record.log is not None:
        body["log"] = record.log.model_dump()
    return body


def statement(
    record: Record, payload: bytes | None = None, *, predicate_type: str = PREDICATE_TYPE
) -> bytes:
    """The in-toto Statement v1 bytes (RFC 8785) for a record; its subjects are the outputs."""
    if record.output is None:
        raise RecordError(
            "output.sha256",
            f"record {record.record_id} has no output (status {record.status}); "
            "an in-toto subject needs the output's sha256",
        )
    body = {
        "_type": STATEMENT_TYPE,
        "subject": subjects(record),
        "predicateType": predicate_type,
        "predicate": predicate(record, payload),
    }
    return canonical_bytes(body)


def record_envelope(
    record: Record,
    signer: Signer,
    *,
    payload: bytes | None = None,
    predicate_type: str = PREDICATE_TYPE,
) -> dict[str, Any]:
    """DSSE envelope (payloadType in-toto) of the record's in-toto Statement."""
    return sign_dsse(
        statement(record, payload, predicate_type=predicate_type), INTOTO_PAYLOAD_TYPE, signer
    )


def verify_statement(
    envelope: Mapping[str, Any] | str | bytes,
    keys: Keys,
    *,
    predicate_type: str = PREDICATE_TYPE,
) -> dict[str, Any]:
    """Verify a record envelope and return its Statement (checked for shape and subject)."""
    opened = verify_dsse(envelope, keys)
    try:
        body = opened.json()
    except ValueError:
        raise VerificationError("dsse", "payload is not JSON") from None
    if not isinstance(body, dict) or body.get("_type") != STATEMENT_TYPE:
        raise VerificationError(
            "dsse", f"payload is not an in-toto Statement v1 ({STATEMENT_TYPE})"
        )
    if body.get("predicateType") != predicate_type:
        raise VerificationError(
            "dsse", f"predicateType is {body.get('predicateType')!r}, expected {predicate_type!r}"
        )
    pred = body.get("predicate")
    subjects = body.get("subject")
    if not isinstance(pred, dict) or not isinstance(subjects, list) or not subjects:
        raise VerificationError("dsse", "statement lacks a subject or a predicate")
    out_sha = (pred.get("output") or {}).get("sha256")
    digests = [s.get("digest", {}).get("sha256") for s in subjects if isinstance(s, dict)]
    if out_sha not in digests:
        raise VerificationError("dsse", "subject digest does not match the record's output sha256")
    return body
