"""Deterministic records, keys and certificates behind the golden files.

Run ``python tests/golden/make_golden.py`` to rewrite every golden file (review
the diff). The tests import this module to rebuild the deterministic formats
and compare them byte for byte with the files here.

Keys come from fixed seeds; record ids, times and log positions are fixed, so
Ed25519 envelopes, PROV and OpenLineage are reproducible. ES256 signatures and
C2PA manifests (random ids, fresh certificates) are not: their golden files are
checked by verifying them, and their tampered copies must fail.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from provmark.canonical import canonical_bytes
from provmark.crypto.keys import LocalSigner, PublicKey
from provmark.record import Record, log_entry, record_from_payload

HERE = Path(__file__).resolve().parent

ED_KEY = Ed25519PrivateKey.from_private_bytes(b"\x01" * 32)
EC_KEY = ec.derive_private_key(int.from_bytes(b"\x02" * 32, "big"), ec.SECP256R1())
C2PA_CA_KEY = ec.derive_private_key(int.from_bytes(b"\x03" * 32, "big"), ec.SECP256R1())
C2PA_LEAF_KEY = ec.derive_private_key(int.from_bytes(b"\x04" * 32, "big"), ec.SECP256R1())


def signer(alg: str = "Ed25519") -> LocalSigner:
    return LocalSigner(ED_KEY if alg == "Ed25519" else EC_KEY)


def public_key(alg: str = "Ed25519") -> PublicKey:
    s = signer(alg)
    return PublicKey(s.key_id, s.alg, s.public_key_pem(), "2024-01-01T00:00:00Z")


def rid(n: int, when: datetime) -> str:
    """A UUIDv7 with a fixed time and a counter for the random bits."""
    ms = int(when.timestamp() * 1000)
    value = (ms << 80) | (0x7 << 76) | (0b10 << 62) | n
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def sha(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


T0 = datetime(2024, 7, 1, 12, 0, 0, tzinfo=UTC)
ROOT = rid(1, T0)
CHILD = rid(2, T0)
FAILED = rid(3, T0)
IMAGE = rid(4, T0)
VARIANTS = rid(5, T0)
OUTPUT_TEXT = "The council approved the budget after a long debate."
TRANSLATION = "Le conseil a approuvé le budget après un long débat."


def png(width: int = 8, height: int = 8, pixels: bytes | None = None) -> bytes:
    """A truecolor PNG, pure Python (pixels: RGB bytes, row by row)."""
    pixels = pixels or bytes(
        (x * 30 + y * 7) % 256 for y in range(height) for x in range(width * 3)
    )
    rows = b"".join(b"\x00" + pixels[y * width * 3 : (y + 1) * width * 3] for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


CONTEXT = {
    "python": "3.11.7",
    "platform": "Linux-6.1-x86_64",
    "hostname": "gen-1",
    "packages": {"provmark": "0.1.0"},
    "git": {"commit": "4ba536f", "dirty": False},
}
MODEL = {
    "name": "acme/summarizer",
    "version": "3.2",
    "provider": "acme",
    "digest": "sha256:" + sha("weights"),
    "files": [{"path": "model.safetensors", "sha256": sha("weights"), "size": 7}],
}


def variant(n: int) -> bytes:
    """The n-th image of the multi-output (v2) record: a PNG with other pixels."""
    return png(pixels=bytes((x * 11 + y * 5 + n * 90) % 256 for y in range(8) for x in range(24)))


def drafts() -> list[dict[str, Any]]:
    """Five unsigned records: a root, its child, a failed grandchild, an image, and a
    schema v2 record with two image outputs derived from the first image."""
    outputs = [
        {"sha256": sha(variant(n)), "media_type": "image/png", "size": len(variant(n))}
        for n in (1, 2)
    ]
    return [
        {
            "record_id": ROOT,
            "schema_version": "1",
            "started_at": "2024-07-01T12:00:00.000000Z",
            "generated_at": "2024-07-01T12:00:01.250000Z",
            "operation": "text_completion",
            "status": "ok",
            "model": MODEL,
            "input": {
                "sha256": sha("Summarize: the council debate"),
                "media_type": "text/plain",
                "snapshot": "Summarize: the council debate",
                "seed": "42",
                "datasets": [
                    {"uri": "s3://acme-data/news/2024-06.parquet", "sha256": sha("news")},
                ],
            },
            "params": {"temperature": 0.2, "max_tokens": 256},
            "output": {
                "sha256": sha(OUTPUT_TEXT),
                "media_type": "text/plain",
                "size": len(OUTPUT_TEXT.encode()),
            },
            "context": CONTEXT,
            "actor": {"user_id": "alice", "service": "summarizer-api", "region": "eu-west-1"},
            "tags": {"env": "test"},
            "usage": {"input_tokens": 12, "output_tokens": 11, "latency_ms": 1250.0},
        },
        {
            "record_id": CHILD,
            "schema_version": "1",
            "started_at": "2024-07-01T12:00:02.000000Z",
            "generated_at": "2024-07-01T12:00:02.500000Z",
            "operation": "chat",
            "status": "ok",
            "model": {"name": "acme/translator", "version": "1.0", "provider": "acme"},
            "input": {"sha256": sha(OUTPUT_TEXT), "media_type": "text/plain"},
            "params": {"temperature": 0},
            "output": {
                "sha256": sha(TRANSLATION),
                "media_type": "text/plain",
                "size": len(TRANSLATION.encode()),
                "uri": "file:///srv/out/translation.txt",
            },
            "context": CONTEXT,
            "actor": {"user_id": "alice", "service": "summarizer-api"},
            "parents": [ROOT],
            "fallback": {
                "requested_model": "acme/translator-xl",
                "served_model": "acme/translator",
                "reason": "capacity",
            },
        },
        {
            "record_id": FAILED,
            "schema_version": "1",
            "started_at": "2024-07-01T12:00:03.000000Z",
            "generated_at": "2024-07-01T12:00:33.000000Z",
            "operation": "chat",
            "status": "error",
            "error": {"type": "TimeoutError", "message": "upstream timed out"},
            "model": {"name": "acme/translator", "version": "1.0", "provider": "acme"},
            "context": CONTEXT,
            "actor": {"user_id": "bob"},
            "parents": [CHILD],
        },
        {
            "record_id": IMAGE,
            "schema_version": "1",
            "started_at": "2024-07-01T12:00:04.000000Z",
            "generated_at": "2024-07-01T12:00:05.000000Z",
            "operation": "image_generation",
            "status": "ok",
            "model": {"name": "acme/painter", "version": "2.0", "provider": "acme"},
            "input": {"sha256": sha("a red square"), "media_type": "text/plain"},
            "output": {"sha256": sha(png()), "media_type": "image/png", "size": len(png())},
            "context": CONTEXT,
            "actor": {"service": "painter-api"},
        },
        {
            "record_id": VARIANTS,
            "schema_version": "2",
            "started_at": "2024-07-01T12:00:06.000000Z",
            "generated_at": "2024-07-01T12:00:07.000000Z",
            "operation": "image_generation",
            "status": "ok",
            "model": {"name": "acme/painter", "version": "2.0", "provider": "acme"},
            "input": {"sha256": sha("two variations"), "media_type": "text/plain"},
            "output": outputs[0],
            "outputs": outputs,
            "context": CONTEXT,
            "actor": {"service": "painter-api"},
            "parents": [IMAGE],
        },
    ]


def signed(alg: str = "Ed25519") -> list[tuple[Record, bytes]]:
    """The drafts signed and placed in a log (indexes 0..3), with their payload bytes."""
    s = signer(alg)
    out = []
    for index, draft in enumerate(drafts()):
        payload = canonical_bytes(draft)
        sig = {"alg": s.alg, "key_id": s.key_id, "sig": base64.b64encode(s.sign(payload)).decode()}
        leaf = hashlib.sha256(b"\x00" + log_entry(payload, sig)).digest()
        record = record_from_payload(
            payload,
            signature=sig,
            log={"index": index, "leaf_hash": base64.b64encode(leaf).decode()},
        )
        out.append((record, payload))
    return out


def tamper_text(text: str) -> str:
    """Change one character inside the signed part of a JWS / envelope."""
    if text.count(".") == 2 and "{" not in text:  # compact JWS: flip a payload character
        head, body, sig = text.strip().split(".")
        i = len(body) // 2
        body = body[:i] + ("A" if body[i] != "A" else "B") + body[i + 1 :]
        return f"{head}.{body}.{sig}\n"
    env = json.loads(text)
    payload = base64.b64decode(env["payload"]).replace(b'"status":"ok"', b'"status":"OK"', 1)
    env["payload"] = base64.b64encode(payload).decode()
    return json.dumps(env, indent=2, sort_keys=True) + "\n"


# ---------------------------------------------------------------- writing


def build_deterministic() -> dict[str, bytes]:
    """Golden files that regenerate byte for byte."""
    from provmark.crypto.envelopes import record_envelope, record_jws
    from provmark.export import get_exporter

    files: dict[str, bytes] = {}
    records = signed("Ed25519")
    root, root_payload = records[0]
    files["record.payload.json"] = root_payload + b"\n"
    files["record-ed25519.jws"] = (record_jws(root_payload, signer()) + "\n").encode()
    env = record_envelope(root, signer(), payload=root_payload)
    files["record-ed25519.dsse.json"] = (json.dumps(env, indent=2, sort_keys=True) + "\n").encode()
    stored = [_stored(r, p) for r, p in records]
    intoto = get_exporter("in-toto", signer=signer())
    with_output = [s for s in stored if s.record().output is not None]
    files["export.intoto.jsonl"] = b"".join(intoto.export(with_output))  # type: ignore[arg-type]
    for fmt, name in (("prov-json", "export.prov.json"), ("prov-n", "export.provn")):
        files[name] = get_exporter(fmt).export(stored)  # type: ignore[assignment]
    files["export.openlineage.jsonl"] = b"".join(get_exporter("openlineage").export(stored))  # type: ignore[arg-type]
    return files


def build_rdf() -> dict[str, bytes]:
    """PROV-O files: equal as RDF graphs (blank node labels vary)."""
    from provmark.export import get_exporter

    stored = [_stored(r, p) for r, p in signed("Ed25519")]
    return {
        "export.prov.ttl": get_exporter("prov-o").export(stored),  # type: ignore[dict-item]
        "export.prov.jsonld": get_exporter("prov-jsonld").export(stored),  # type: ignore[dict-item]
    }


def _stored(record: Record, payload: bytes) -> Any:
    from provmark.store.base import StoredRecord

    assert record.signature is not None and record.log is not None
    return StoredRecord(
        record_id=record.record_id,
        payload=payload,
        signature=record.signature.model_dump(),
        index=record.log.index,
    )


def build_signed_only() -> dict[str, bytes]:
    """ES256 envelopes and C2PA files: verified, not compared (signatures are randomised)."""
    from provmark.crypto.envelopes import record_envelope, record_jws
    from provmark.export.c2pa import mark
    from provmark.export.c2pa_certs import make_dev_cert

    files: dict[str, bytes] = {}
    root, payload = signed("ES256")[0]
    files["record-es256.jws"] = (record_jws(payload, signer("ES256")) + "\n").encode()
    env = record_envelope(root, signer("ES256"), payload=payload)
    files["record-es256.dsse.json"] = (json.dumps(env, indent=2, sort_keys=True) + "\n").encode()

    cert = make_dev_cert(
        days=36500,
        not_before=datetime(2024, 1, 1, tzinfo=UTC),
        ca_key=C2PA_CA_KEY,
        signer_key=C2PA_LEAF_KEY,
        organization="provmark golden",
    )
    files["c2pa-ca.pem"] = cert.ca_pem
    image, text = signed("Ed25519")[3][0], signed("Ed25519")[0][0]
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "in.png").write_bytes(png())
        mark(t / "in.png", t / "marked.png", image, cert.chain_pem, cert.key_pem)
        files["c2pa-marked.png"] = (t / "marked.png").read_bytes()
        (t / "in.txt").write_text(OUTPUT_TEXT)
        done = mark(t / "in.txt", t / "summary.txt", text, cert.chain_pem, cert.key_pem)
        assert done.sidecar is not None
        files["c2pa-summary.txt"] = (t / "summary.txt").read_bytes()
        files["c2pa-summary.c2pa"] = done.sidecar.read_bytes()
    return files


def tampered(files: dict[str, bytes]) -> dict[str, bytes]:
    out = {}
    for name in (
        "record-ed25519.jws",
        "record-es256.jws",
        "record-ed25519.dsse.json",
        "record-es256.dsse.json",
    ):
        if name in files:
            stem, _, ext = name.partition(".")
            out[f"{stem}.tampered.{ext}"] = tamper_text(files[name].decode()).encode()
    if "export.intoto.jsonl" in files:
        lines = files["export.intoto.jsonl"].splitlines(keepends=True)
        env = json.loads(lines[1])
        payload = base64.b64decode(env["payload"]).replace(
            b"acme/translator", b"acme/TRANSLATOR", 1
        )
        env["payload"] = base64.b64encode(payload).decode()
        lines[1] = json.dumps(env, separators=(",", ":"), sort_keys=True).encode() + b"\n"
        out["export.intoto.tampered.jsonl"] = b"".join(lines)
        # the multi-output record's second subject swapped for another image's digest
        lines = files["export.intoto.jsonl"].splitlines(keepends=True)
        env = json.loads(lines[-1])
        payload = base64.b64decode(env["payload"]).replace(
            sha(variant(2)).encode(), sha(png()).encode(), 1
        )
        env["payload"] = base64.b64encode(payload).decode()
        lines[-1] = json.dumps(env, separators=(",", ":"), sort_keys=True).encode() + b"\n"
        out["export.intoto.tampered-subject.jsonl"] = b"".join(lines)
    if "c2pa-marked.png" in files:
        out["c2pa-marked.tampered.png"] = change_one_pixel(files["c2pa-marked.png"])
    if "c2pa-summary.txt" in files:
        out["c2pa-summary.tampered.txt"] = files["c2pa-summary.txt"].replace(b"long", b"short")
    return out


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, i = [], 8
    while i < len(data):
        (n,) = struct.unpack(">I", data[i : i + 4])
        chunks.append((data[i + 4 : i + 8], data[i + 8 : i + 8 + n]))
        i += 12 + n
    return chunks


def change_one_pixel(data: bytes, x: int = 3, y: int = 2) -> bytes:
    """The same PNG (manifest chunk and all) with one pixel's red value changed."""
    chunks = png_chunks(data)
    width = struct.unpack(">I", chunks[0][1][:4])[0]
    out = []
    for kind, body in chunks:
        if kind == b"IDAT":
            rows = bytearray(zlib.decompress(body))
            pos = y * (1 + width * 3) + 1 + x * 3
            rows[pos] ^= 0x01
            body = zlib.compress(bytes(rows), 9)
        out.append(
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )
    return b"\x89PNG\r\n\x1a\n" + b"".join(out)


def main() -> None:
    files = {**build_deterministic(), **build_rdf(), **build_signed_only()}
    files.update(tampered(files))
    for name, data in sorted(files.items()):
        (HERE / name).write_bytes(data)
        print(f"wrote tests/golden/{name} ({len(data)} bytes)")


if __name__ == "__main__":
    main()


def import_history_key(home: Path) -> None:
    """Give ``home`` a record key of unknown creation time (valid since the epoch), as
    when history signed elsewhere is imported: ingest refuses a record dated outside the
    window of the key that signs it, and the golden records are dated in 2024."""
    from provmark.crypto.keystore import _pem, _write_private

    path = home / "keys" / "records.pem"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write_private(path, _pem(Ed25519PrivateKey.generate()))
