"""C2PA: mark PNG/JPEG/WebP and text, read back with c2pa's Reader against a trust anchor,
detect tampering (one changed pixel), keep earlier manifests as ingredients, refuse bad input.

Images are made here in pure Python: PNG (zlib), a baseline JPEG of flat 8x8 blocks
(DC coefficients only) and a one-colour lossless WebP (VP8L with one-symbol codes).
"""

from __future__ import annotations

import base64
import struct
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

import provmark
from provmark.errors import ConfigError, RecordError, VerificationError
from provmark.export.c2pa import (
    DIGITAL_SOURCE_TYPE,
    check_record,
    mark,
    read,
    sidecar_for,
    sniff,
    verify,
)
from provmark.export.c2pa_certs import DevCert, load_signing_material, make_dev_cert
from provmark.record import now_utc
from provmark.store.base import StoredRecord

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
sys.path.insert(0, str(GOLDEN))
import make_golden as g  # noqa: E402

# ---------------------------------------------------------------- tiny images


def jpeg(values: list[list[int]]) -> bytes:
    """Baseline grayscale JPEG, one flat 8x8 block per value (DC coefficients only)."""
    bh, bw = len(values), len(values[0])

    def seg(marker: int, body: bytes) -> bytes:
        return struct.pack(">HH", marker, len(body) + 2) + body

    def table(bits: list[int], vals: list[int]) -> dict[int, tuple[int, int]]:
        codes, code, k = {}, 0, 0
        for length, count in enumerate(bits, 1):
            for _ in range(count):
                codes[vals[k]] = (code, length)
                code += 1
                k += 1
            code <<= 1
        return codes

    dc_bits, dc_vals = [0, 1, 5, 1, 1, 1, 1, 1, 1] + [0] * 7, list(range(12))
    ac_bits, ac_vals = [1] + [0] * 15, [0]  # only EOB
    dc, ac = table(dc_bits, dc_vals), table(ac_bits, ac_vals)
    state = {"acc": 0, "n": 0}
    out = bytearray()

    def put(value: int, length: int) -> None:
        for i in range(length - 1, -1, -1):
            state["acc"] = (state["acc"] << 1) | ((value >> i) & 1)
            state["n"] += 1
            if state["n"] == 8:
                out.append(state["acc"])
                if state["acc"] == 0xFF:
                    out.append(0)  # byte stuffing
                state["acc"], state["n"] = 0, 0

    prev = 0
    for row in values:
        for v in row:
            coef = (v - 128) * 8  # DC of a flat block with quantiser 1
            diff, prev = coef - prev, coef
            cat = abs(diff).bit_length()
            put(*dc[cat])
            if cat:
                put(diff if diff > 0 else diff + (1 << cat) - 1, cat)
            put(*ac[0])
    if state["n"]:
        put((1 << (8 - state["n"])) - 1, 8 - state["n"])
    return (
        b"\xff\xd8"
        + seg(0xFFE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
        + seg(0xFFDB, b"\x00" + b"\x01" * 64)
        + seg(0xFFC0, struct.pack(">BHHB", 8, bh * 8, bw * 8, 1) + b"\x01\x11\x00")
        + seg(0xFFC4, b"\x00" + bytes(dc_bits) + bytes(dc_vals))
        + seg(0xFFC4, b"\x10" + bytes(ac_bits) + bytes(ac_vals))
        + seg(0xFFDA, b"\x01\x01\x00\x00\x3f\x00")
        + bytes(out)
        + b"\xff\xd9"
    )


def webp(width: int, height: int, rgba: tuple[int, int, int, int]) -> bytes:
    """Lossless WebP (VP8L) of one colour: each channel is a one-symbol prefix code."""
    bits: list[int] = []

    def put(value: int, n: int) -> None:
        bits.extend((value >> i) & 1 for i in range(n))  # least significant bit first

    put(0x2F, 8)
    put(width - 1, 14)
    put(height - 1, 14)
    put(0, 1)  # alpha unused
    put(0, 3)  # version
    put(0, 3)  # no transform, no colour cache, no meta prefix codes
    r, gr, b, a = rgba
    for symbol in (gr, r, b, a):
        put(0b111, 3)  # simple code, one symbol, 8-bit symbol
        put(symbol, 8)
    put(0b001, 3)  # distance: simple code, one symbol, 1-bit symbol
    put(0, 1)
    data = bytes(
        sum(bit << j for j, bit in enumerate(bits[i : i + 8])) for i in range(0, len(bits), 8)
    )
    chunk = b"VP8L" + struct.pack("<I", len(data)) + data + (b"\x00" if len(data) % 2 else b"")
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def flip_in_image_data(data: bytes, media: str) -> bytes:
    """Change one byte of the image data itself (not of the manifest)."""
    b = bytearray(data)
    if media == "image/jpeg":
        sos = b.rindex(b"\xff\xda")
        b[sos + 2 + int.from_bytes(b[sos + 2 : sos + 4], "big")] ^= 0x10
    elif media == "image/webp":
        b[b.index(b"VP8L") + 13] ^= 0x01
    else:
        return g.change_one_pixel(data)
    return bytes(b)


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def cert() -> DevCert:
    return make_dev_cert()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[provmark.Provmark]:
    with provmark.open(tmp_path / "x.db", home=tmp_path / "home", flush_interval=0.01) as pm:
        yield pm


def record_for(
    pm: provmark.Provmark, data: bytes, media: str, n: int, **extra: Any
) -> StoredRecord:
    """Log a record whose output is ``data``."""
    draft = {
        "record_id": g.rid(100 + n, g.T0),
        "generated_at": now_utc(),  # after the store's key was made, so it verifies
        "operation": "image_generation",
        "model": {"name": "acme/painter", "version": "2.0", "provider": "acme"},
        "output": {"sha256": g.sha(data), "media_type": media, "size": len(data)},
        "actor": {"service": "painter-api"},
        **extra,
    }
    (rid,) = pm.ingest([draft])
    stored = pm.store.get(rid)
    assert stored is not None
    return stored


IMAGES = {
    "image/png": ("png", g.png()),
    "image/jpeg": ("jpg", jpeg([[10, 200, 90], [250, 0, 128]])),
    "image/webp": ("webp", webp(5, 3, (200, 30, 60, 255))),
}


# ---------------------------------------------------------------- marking and reading


@pytest.mark.parametrize("media", list(IMAGES))
def test_mark_read_back_trusted_and_tampering_fails(
    media: str, cert: DevCert, store: provmark.Provmark, tmp_path: Path
) -> None:
    ext, data = IMAGES[media]
    assert sniff(data) == media
    stored = record_for(store, data, media, 1)
    src, out = tmp_path / f"in.{ext}", tmp_path / f"out.{ext}"
    src.write_bytes(data)
    done = mark(src, out, stored, cert.chain_pem, cert.key_pem)
    assert done.sidecar is None and done.media_type == media and not done.parent_manifest
    assert src.read_bytes() == data  # the input is left alone

    report = read(out, trust_anchors=cert.ca_pem)
    assert report.state == "Trusted" and report.ok and report.embedded
    assert read(out).state == "Valid"  # without the anchor: intact but not trusted
    (action,) = report.actions
    assert action["action"] == "c2pa.created"
    assert action["digitalSourceType"] == DIGITAL_SOURCE_TYPE
    assert action["softwareAgent"]["name"] == "acme/painter"
    assert report.manifest["claim_generator_info"][0]["name"] == "provmark"
    assert report.disclosure == {
        "ai_generated": True,
        "provider": "acme",
        "system_name": "acme/painter",
        "system_version": "2.0",
        "created_at": stored.record().generated_at,
        "unique_id": stored.record_id,
    }
    assert report.record is not None
    assert report.record["record_id"] == stored.record_id
    assert report.record["record_hash"] == base64.b64encode(stored.leaf_hash()).decode()
    assert report.record["log_index"] == stored.index
    verified = check_record(report, store)
    assert verified.record.record_id == stored.record_id

    bad = tmp_path / f"bad.{ext}"
    bad.write_bytes(flip_in_image_data(out.read_bytes(), media))
    tampered = read(bad, trust_anchors=cert.ca_pem)
    assert tampered.state == "Invalid" and not tampered.ok
    assert "assertion.dataHash.mismatch" in [f["code"] for f in tampered.failures]
    with pytest.raises(VerificationError) as exc:
        verify(bad, trust_anchors=cert.ca_pem)
    assert exc.value.check == "c2pa"


def test_one_changed_pixel_fails(cert: DevCert, store: provmark.Provmark, tmp_path: Path) -> None:
    stored = record_for(store, g.png(), "image/png", 2)
    (tmp_path / "in.png").write_bytes(g.png())
    mark(tmp_path / "in.png", tmp_path / "out.png", stored, cert.chain_pem, cert.key_pem)
    edited = g.change_one_pixel((tmp_path / "out.png").read_bytes(), x=7, y=7)
    (tmp_path / "edited.png").write_bytes(edited)
    report = read(tmp_path / "edited.png", trust_anchors=cert.ca_pem)
    assert report.state == "Invalid"
    assert [f["code"] for f in report.failures] == ["assertion.dataHash.mismatch"]


def test_text_gets_a_sidecar(cert: DevCert, store: provmark.Provmark, tmp_path: Path) -> None:
    text = b"An AI-written paragraph.\n"
    stored = record_for(store, text, "text/plain", 3)
    (tmp_path / "story.txt").write_bytes(text)
    done = mark(
        tmp_path / "story.txt", tmp_path / "out" / "story.txt", stored, cert.chain_pem, cert.key_pem
    )
    assert done.sidecar == tmp_path / "out" / "story.c2pa" == sidecar_for(done.path)
    assert done.path.read_bytes() == text  # text is not changed
    report = read(done.path, trust_anchors=cert.ca_pem)
    assert report.state == "Trusted" and not report.embedded and report.sidecar == done.sidecar
    assert report.record is not None and report.record["record_id"] == stored.record_id
    done.path.write_bytes(text.replace(b"AI", b"A.I."))
    assert read(done.path, trust_anchors=cert.ca_pem).state == "Invalid"


def test_image_sidecar_on_request(cert: DevCert, store: provmark.Provmark, tmp_path: Path) -> None:
    stored = record_for(store, g.png(), "image/png", 4)
    (tmp_path / "in.png").write_bytes(g.png())
    done = mark(
        tmp_path / "in.png",
        tmp_path / "out.png",
        stored,
        cert.chain_pem,
        cert.key_pem,
        sidecar=True,
    )
    assert done.path.read_bytes() == g.png() and done.sidecar is not None
    report = read(done.path, sidecar=done.sidecar, trust_anchors=cert.ca_pem)
    assert report.state == "Trusted" and not report.embedded


def test_earlier_manifest_becomes_an_ingredient(
    cert: DevCert, store: provmark.Provmark, tmp_path: Path
) -> None:
    first = record_for(store, g.png(), "image/png", 5)
    (tmp_path / "in.png").write_bytes(g.png())
    mark(tmp_path / "in.png", tmp_path / "once.png", first, cert.chain_pem, cert.key_pem)
    once = (tmp_path / "once.png").read_bytes()
    second = record_for(store, once, "image/png", 6)
    done = mark(tmp_path / "once.png", tmp_path / "twice.png", second, cert.chain_pem, cert.key_pem)
    assert done.parent_manifest
    report = read(tmp_path / "twice.png", trust_anchors=cert.ca_pem)
    assert report.state == "Trusted"
    assert [(i["title"], i["relationship"]) for i in report.ingredients] == [
        ("once.png", "parentOf")
    ]
    assert [a["action"] for a in report.actions] == ["c2pa.opened", "c2pa.edited"]
    assert report.actions[1]["digitalSourceType"] == DIGITAL_SOURCE_TYPE
    assert report.record is not None and report.record["record_id"] == second.record_id
    assert read(tmp_path / "once.png").record["record_id"] == first.record_id  # type: ignore[index]


def test_ed25519_certificate(store: provmark.Provmark, tmp_path: Path) -> None:
    cert = make_dev_cert(alg="Ed25519")
    stored = record_for(store, g.png(), "image/png", 7)
    (tmp_path / "in.png").write_bytes(g.png())
    mark(tmp_path / "in.png", tmp_path / "out.png", stored, cert.chain_pem, cert.key_pem)
    report = read(tmp_path / "out.png", trust_anchors=cert.ca_pem)
    assert report.state == "Trusted"
    assert report.manifest["signature_info"]["alg"].lower() == "ed25519"


# ---------------------------------------------------------------- golden files


def test_golden_marked_files() -> None:
    anchor = (GOLDEN / "c2pa-ca.pem").read_bytes()
    good = read(GOLDEN / "c2pa-marked.png", trust_anchors=anchor)
    assert good.state == "Trusted", good.failures
    assert good.record is not None and good.record["record_id"] == g.IMAGE
    image_record = g.signed()[3][0]
    assert good.record["record_hash"] == image_record.log.leaf_hash  # type: ignore[union-attr]
    bad = read(GOLDEN / "c2pa-marked.tampered.png", trust_anchors=anchor)
    assert bad.state == "Invalid"
    text = read(GOLDEN / "c2pa-summary.txt", trust_anchors=anchor)
    assert text.state == "Trusted" and text.sidecar == GOLDEN / "c2pa-summary.c2pa"
    edited = read(
        GOLDEN / "c2pa-summary.tampered.txt",
        sidecar=GOLDEN / "c2pa-summary.c2pa",
        trust_anchors=anchor,
    )
    assert edited.state == "Invalid"


# ---------------------------------------------------------------- bad input


def test_bad_input(cert: DevCert, store: provmark.Provmark, tmp_path: Path) -> None:
    stored = record_for(store, g.png(), "image/png", 8)
    src = tmp_path / "in.png"
    src.write_bytes(g.png())
    out = tmp_path / "out.png"

    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"\x00\x01\x02\xff" * 64)
    with pytest.raises(ConfigError, match="not an image"):
        mark(binary, tmp_path / "o.bin", stored, cert.chain_pem, cert.key_pem, check_output=False)

    other = tmp_path / "other.png"
    other.write_bytes(g.png(4, 4))
    with pytest.raises(RecordError) as exc:
        mark(other, out, stored, cert.chain_pem, cert.key_pem)
    assert exc.value.field == "output.sha256"

    unlogged = stored.record().model_copy(update={"log": None})
    with pytest.raises(RecordError) as exc:
        mark(src, out, unlogged, cert.chain_pem, cert.key_pem)
    assert exc.value.field == "log"

    anonymous = record_for(store, g.png(), "image/png", 9, model={"name": "x", "version": "1"})
    with pytest.raises(RecordError) as exc:
        mark(src, out, anonymous, cert.chain_pem, cert.key_pem)
    assert exc.value.field == "model.provider"
    mark(src, out, anonymous, cert.chain_pem, cert.key_pem, provider="Example Inc.")
    assert read(out).disclosure["provider"] == "Example Inc."  # type: ignore[index]

    with pytest.raises(VerificationError, match="no C2PA manifest"):
        read(src)
    with pytest.raises(ConfigError):
        mark(tmp_path / "missing.png", out, stored, cert.chain_pem, cert.key_pem)


def test_certificate_checks(cert: DevCert) -> None:
    expired = make_dev_cert(days=10, not_before=datetime.now(UTC) - timedelta(days=30))
    with pytest.raises(ConfigError, match="expired"):
        load_signing_material(expired.chain_pem, expired.key_pem)
    future = make_dev_cert(not_before=datetime.now(UTC) + timedelta(days=30))
    with pytest.raises(ConfigError, match="not valid before"):
        load_signing_material(future.chain_pem, future.key_pem)
    other = make_dev_cert()
    with pytest.raises(ConfigError, match="does not belong"):
        load_signing_material(cert.chain_pem, other.key_pem)
    with pytest.raises(ConfigError, match="is a CA"):
        load_signing_material(cert.ca_pem, cert.key_pem)
    with pytest.raises(ConfigError, match="not PEM"):
        load_signing_material(b"garbage", cert.key_pem)
    with pytest.raises(ConfigError, match="private key"):
        load_signing_material(cert.chain_pem, b"garbage")
    material = load_signing_material(cert.chain_pem, cert.key_pem)
    assert material.alg == "ES256" and material.leaf.issuer != material.leaf.subject
    p384 = make_dev_cert(
        ca_key=ec.generate_private_key(ec.SECP384R1()),
        signer_key=ec.generate_private_key(ec.SECP384R1()),
    )
    assert load_signing_material(p384.chain_pem, p384.key_pem).alg == "ES384"


def test_check_record_refuses_a_foreign_hash(
    cert: DevCert, store: provmark.Provmark, tmp_path: Path
) -> None:
    stored = record_for(store, g.png(), "image/png", 10)
    (tmp_path / "in.png").write_bytes(g.png())
    mark(tmp_path / "in.png", tmp_path / "out.png", stored, cert.chain_pem, cert.key_pem)
    report = read(tmp_path / "out.png")
    assert report.record is not None
    forged = type(report)(**{**report.__dict__, "record": {**report.record, "record_hash": "AAAA"}})
    with pytest.raises(VerificationError) as exc:
        check_record(forged, store)
    assert exc.value.check == "c2pa_record"
    missing = type(report)(
        **{**report.__dict__, "record": {**report.record, "record_id": g.rid(999, g.T0)}}
    )
    with pytest.raises(VerificationError, match="not in this store"):
        check_record(missing, store)


def test_cli_verify_finds_a_marked_file_through_its_manifest(
    cert: DevCert, store: provmark.Provmark, tmp_path: Path
) -> None:
    from provmark.cli import main

    stored = record_for(store, g.png(), "image/png", 9)
    (tmp_path / "in.png").write_bytes(g.png())
    mark(tmp_path / "in.png", tmp_path / "marked.png", stored, cert.chain_pem, cert.key_pem)
    store.flush()
    target = ["--db", str(tmp_path / "x.db"), "--home", str(tmp_path / "home")]
    assert main(["verify", str(tmp_path / "in.png"), *target]) == 0  # the original bytes
    assert main(["verify", str(tmp_path / "marked.png"), *target]) == 0  # found via C2PA
    edited = g.change_one_pixel((tmp_path / "marked.png").read_bytes(), x=7, y=7)
    (tmp_path / "edited.png").write_bytes(edited)
    assert main(["verify", str(tmp_path / "edited.png"), *target]) == 1


def test_marked_image_carries_a_soft_binding(
    cert: DevCert, store: provmark.Provmark, tmp_path: Path
) -> None:
    import io as _io

    from PIL import Image, ImageDraw

    picture = Image.new("RGB", (96, 96), (30, 60, 90))
    ImageDraw.Draw(picture).ellipse((20, 20, 70, 80), fill=(220, 180, 40))
    buf = _io.BytesIO()
    picture.save(buf, "PNG")
    data = buf.getvalue()
    stored = record_for(store, data, "image/png", 11)
    (tmp_path / "in.png").write_bytes(data)
    mark(tmp_path / "in.png", tmp_path / "out.png", stored, cert.chain_pem, cert.key_pem)
    labels = [a.get("label") for a in read(tmp_path / "out.png").manifest["assertions"]]
    assert any(str(label).startswith("c2pa.soft-binding") for label in labels), labels
