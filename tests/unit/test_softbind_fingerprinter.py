"""Fingerprinter: what gets fingerprinted, skip reasons, buffering, cost, keys."""

from __future__ import annotations

import base64
import io
import json
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image, ImageDraw

import provmark
from provmark.crypto.keystore import EnvKeyStore
from provmark.errors import ConfigError
from provmark.softbind import Fingerprinter, UnsupportedMediaError, classify, softbind_key
from provmark.softbind.fingerprinter import key_id

TEXT = (
    "The auditor reads the signed record and checks the log. The model wrote a summary "
    "for the board last week. Every checkpoint is signed by the log key and published."
)


def png() -> bytes:
    im = Image.new("RGB", (120, 90), (30, 60, 90))
    ImageDraw.Draw(im).ellipse([10, 10, 80, 70], fill=(250, 200, 0))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def fp(pm: provmark.Provmark) -> Fingerprinter:
    f = Fingerprinter.for_provmark(pm, batch=4, max_delay=3600)
    yield f
    f.close()


def test_classify(tmp_path: Path) -> None:
    assert classify(TEXT) == ("text", TEXT)
    assert classify(TEXT.encode(), "text/markdown; charset=utf-8") == ("text", TEXT)
    assert classify(TEXT.encode()) == ("text", TEXT)
    assert classify(png())[0] == "image"
    path = tmp_path / "out.png"
    path.write_bytes(png())
    assert classify(path, "image/png")[0] == "image"
    assert classify(Image.open(io.BytesIO(png())))[0] == "image"
    with pytest.raises(UnsupportedMediaError, match="application/json is not supported"):
        classify(json.dumps({"a": 1}), "application/json")
    with pytest.raises(UnsupportedMediaError, match="application/pdf"):
        classify(b"%PDF-1.7\n\x00\x01\x02\x03")
    with pytest.raises(UnsupportedMediaError, match="audio/mpeg"):
        classify(b"ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb")
    with pytest.raises(UnsupportedMediaError, match="not a raster image"):
        classify(b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml")
    with pytest.raises(UnsupportedMediaError, match="not UTF-8"):
        classify(b"\xff\xfe\x00\x00", "text/plain")
    with pytest.raises(UnsupportedMediaError, match="cannot fingerprint a dict"):
        classify({"a": 1})


def test_add_skips_with_reasons(fp: Fingerprinter) -> None:
    short = fp.add("r1", "too short", "text/plain")
    assert not short.stored and "too short" in short.detail and short.kind == "text"
    other = fp.add("r2", b"%PDF-1.7 \x00\x01", "application/pdf")
    assert not other.stored and other.kind is None and "application/pdf" in other.detail
    plain = fp.add("r3", _plain_png(), "image/png")
    assert not plain.stored and "too plain" in plain.detail
    stats = fp.stats()
    assert stats["text"]["skipped"] == 1 and stats["other"]["skipped"] == 1
    assert fp.store.stats()["kinds"] == {}


def _plain_png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (5, 5, 5)).save(buf, "PNG")
    return buf.getvalue()


def test_kinds_can_be_turned_off(pm: provmark.Provmark) -> None:
    f = Fingerprinter.for_provmark(pm, text=False)
    try:
        done = f.add("r1", TEXT)
        assert not done.stored and "turned off" in done.detail
        assert f.add("r2", png(), "image/png").stored
    finally:
        f.close()


def test_buffered_until_batch_or_flush(fp: Fingerprinter) -> None:
    for i in range(3):
        assert fp.add(f"r{i}", TEXT).stored
    assert fp.stats()["pending"] == 3 and fp.store.stats()["kinds"] == {}
    fp.add("r3", png(), "image/png")  # the fourth fills the batch
    assert fp.stats()["pending"] == 0
    kinds = fp.store.stats()["kinds"]
    assert kinds["text"]["items"] == 3 and kinds["image"]["items"] == 1
    fp.add("r4", TEXT)
    fp.flush()
    assert fp.store.stats()["kinds"]["text"]["items"] == 4


def test_cost_is_measured(fp: Fingerprinter) -> None:
    done = fp.add("r1", TEXT)
    assert done.cost_ms > 0 and "words" in done.detail
    s = fp.stats()["text"]
    assert s["stored"] == 1 and s["total_ms"] == pytest.approx(done.cost_ms, abs=0.01)


def test_add_from_other_threads(fp: Fingerprinter) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(10):
                fp.add(f"t{n}-{i}", TEXT + f" Thread {n} item {i} adds words here.")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    fp.flush()
    assert not errors and fp.store.stats()["kinds"]["text"]["items"] == 30


def test_same_home_same_key(pm: provmark.Provmark, home: Path) -> None:
    a = Fingerprinter.for_provmark(pm)
    assert a.key_id == key_id(pm.keystore.secret("softbind"))
    a.close()
    other = provmark.open(pm.store.path, home=home.parent / "elsewhere")  # another key
    try:
        with pytest.raises(ConfigError, match="another soft-binding key"):
            Fingerprinter.for_provmark(other)
    finally:
        other.close()


def test_environment_keys_need_the_secret() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    ks = EnvKeyStore({"PROVMARK_SIGNING_KEY": pem.decode()})
    with pytest.raises(ConfigError, match="PROVMARK_SECRET_SOFTBIND"):
        softbind_key(SimpleNamespace(keystore=ks))
    secret = base64.b64encode(b"s" * 32).decode()
    ks = EnvKeyStore({"PROVMARK_SIGNING_KEY": pem.decode(), "PROVMARK_SECRET_SOFTBIND": secret})
    assert softbind_key(SimpleNamespace(keystore=ks)) == b"s" * 32
