"""Soft binding end to end: capture, fingerprint, look up edited copies, the CLI, C2PA.

Real store, real keys, real images (Pillow); outputs are recorded with
``pm.record`` and fingerprinted with ``Fingerprinter.add``, as the client's
writer-thread hook will do.
"""

from __future__ import annotations

import base64
import io
import json
import random
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw, ImageEnhance, PngImagePlugin

import provmark
from provmark.cli import main
from provmark.errors import ConfigError
from provmark.softbind import (
    Fingerprinter,
    UnsupportedMediaError,
    fuzzy_verify,
    soft_binding_assertion,
)

SOURCE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
WORDS = [
    "the",
    "model",
    "writes",
    "a",
    "short",
    "summary",
    "of",
    "the",
    "audit",
    "report",
    "for",
    "the",
    "board",
    "and",
    "the",
    "log",
    "keeps",
    "every",
    "signed",
    "record",
    "so",
    "that",
    "anyone",
    "can",
    "check",
    "where",
    "a",
    "text",
    "or",
    "an",
    "image",
    "came",
    "from",
    "later",
    "regulators",
    "ask",
    "which",
    "version",
    "produced",
    "each",
    "answer",
    "while",
    "customers",
    "paste",
    "copies",
    "into",
    "the",
    "verifier",
    "after",
    "editing",
    "them",
    "by",
    "hand",
]


def essay(seed: int, sentences: int = 10) -> str:
    rng = random.Random(seed)
    out = []
    for _ in range(sentences):
        words = [rng.choice(WORDS) for _ in range(rng.randint(8, 16))]
        out.append(" ".join(words).capitalize() + ".")
    return " ".join(out[:5]) + "\n\n" + " ".join(out[5:])


def picture(seed: int) -> Image.Image:
    rng = random.Random(seed)
    im = Image.new("RGB", (320, 240), tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(im)
    for _ in range(10):
        x, y = rng.randrange(320), rng.randrange(240)
        box = [x, y, x + rng.randint(20, 160), y + rng.randint(20, 120)]
        colour = tuple(rng.randrange(256) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
    return im


def encode(im: Image.Image, fmt: str = "PNG", **kw: Any) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def with_metadata(im: Image.Image) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "prompt: a red ball, seed 7")
    return encode(im, pnginfo=info)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A store with 20 fingerprinted texts and 10 fingerprinted images."""
    db, home = tmp_path / "p.db", tmp_path / "home"
    pm = provmark.open(db, home=home, flush_interval=0.01)
    fp = Fingerprinter.for_provmark(pm)
    model = provmark.Model("acme/writer", version="2")
    texts, images, ids = [], [], {}
    for i in range(20):
        texts.append(essay(i))
    for i in range(10):
        images.append(picture(i))
    for i, text in enumerate(texts):
        with pm.record(model=model, input=f"t{i}") as rec:
            rec.set_output(text)
        ids[("text", i)] = rec.record_id
    for i, im in enumerate(images):
        with pm.record(model=model, input=f"i{i}", operation="image_generation") as rec:
            rec.set_output(with_metadata(im), media_type="image/png")
        ids[("image", i)] = rec.record_id
    pm.flush()
    for i, text in enumerate(texts):
        assert fp.add(ids[("text", i)], text, "text/plain").stored
    for i, im in enumerate(images):
        assert fp.add(ids[("image", i)], with_metadata(im), "image/png").stored
    fp.flush()
    yield {
        "pm": pm,
        "fp": fp,
        "texts": texts,
        "images": images,
        "ids": ids,
        "db": db,
        "home": home,
        "tmp": tmp_path,
    }
    fp.close()
    pm.close()


def look(w: dict[str, Any], content: Any, **kw: Any) -> Any:
    return fuzzy_verify(w["pm"], content, fingerprinter=w["fp"], **kw)


# ---------------------------------------------------------------- text


def test_identical_text_is_proven(world: dict[str, Any]) -> None:
    r = look(world, world["texts"][3])
    assert r.status == "identical" and r.proven and r.matches == []
    assert r.exact.record_id == world["ids"][("text", 3)]
    assert "signed and logged" in r.detail


def test_edited_text_is_derived_not_proven(world: dict[str, Any]) -> None:
    text = world["texts"][4]
    edited = text.replace(" the ", " teh ", 3).replace("model", "modle", 1) + " A new ending."
    r = look(world, edited)
    assert r.status == "derived" and not r.proven and r.exact is None
    best = r.best
    assert best.record_id == world["ids"][("text", 4)]
    assert 0.3 < best.similarity < 1.0 and best.coverage > 0.8
    assert best.verified is not None and best.record_problem is None  # the record itself is sound
    assert any(p.kind == "sentence" for p in best.parts)
    assert "a fuzzy lead, not a proof" in r.detail
    out = r.to_json()
    assert out["status"] == "derived" and out["proven"] is False
    assert out["matches"][0]["record_verified"] is True


def test_normalised_copy_says_same_text(world: dict[str, Any]) -> None:
    text = world["texts"][5]
    r = look(world, text.upper().replace(" ", "  ").replace("\n\n", "\r\n\r\n"))
    assert r.status == "derived" and r.best.similarity == 1.0
    assert r.best.method.startswith("same text after normalising")


def test_quote_finds_its_record_with_the_matching_sentences(world: dict[str, Any]) -> None:
    text = world["texts"][6]
    sentences = text.replace("\n\n", " ").split(". ")
    quote = "From the report. " + ". ".join(sentences[3:6]) + ". Thanks."
    r = look(world, quote)
    assert r.status == "derived" and r.best.record_id == world["ids"][("text", 6)]
    assert r.best.coverage >= 0.8
    spans = [p.query_span for p in r.best.parts]
    assert all(quote[a:b].strip() for a, b in spans)
    assert {p.record_part for p in r.best.parts} == {3, 4, 5}


def test_unrelated_and_too_short_text(world: dict[str, Any]) -> None:
    r = look(world, essay(999))
    assert r.status == "no_match" and r.matches == [] and not r.proven
    short = look(world, "the model writes")
    assert short.status == "too_short" and "too short" in short.detail
    assert look(world, "").status == "too_short"


def test_unsupported_media_is_a_clear_error(world: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedMediaError, match="application/pdf is not supported"):
        look(world, b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n")
    with pytest.raises(ConfigError, match="application/json"):
        look(
            world, '{"a": 1, "b": "some json text here to look up"}', media_type="application/json"
        )


def test_tampered_record_is_reported_on_the_match(world: dict[str, Any]) -> None:
    rid = world["ids"][("text", 7)]
    con = sqlite3.connect(world["db"])
    payload = con.execute("SELECT payload FROM records WHERE record_id = ?", (rid,)).fetchone()[0]
    tampered = bytes(payload).replace(b'"acme/writer"', b'"evil/writer"')
    con.execute("UPDATE records SET payload = ? WHERE record_id = ?", (tampered, rid))
    con.commit()
    con.close()
    r = look(world, world["texts"][7] + " Edited.")
    assert r.status == "derived" and r.best.record_id == rid
    assert r.best.verified is None and r.best.record_problem.startswith("record_signature")
    assert "FAILED record_signature" in r.detail


# ---------------------------------------------------------------- images


@pytest.mark.parametrize(
    "edit",
    [
        lambda im: encode(im.resize((160, 120))),
        lambda im: encode(im, "JPEG", quality=60),
        lambda im: encode(ImageEnhance.Brightness(im).enhance(1.2)),
        lambda im: encode(im.crop((16, 12, 304, 228))),
    ],
    ids=["resize", "jpeg", "brightness", "crop"],
)
def test_edited_image_is_derived(world: dict[str, Any], edit: Any) -> None:
    for i in (1, 2):
        r = look(world, edit(world["images"][i]))
        assert r.status == "derived" and r.kind == "image"
        assert r.best.record_id == world["ids"][("image", i)]
        assert r.best.similarity > 0.8 and r.best.parts[0].kind == "region"


def test_stripped_metadata_has_the_same_pixels(world: dict[str, Any]) -> None:
    stripped = encode(world["images"][3])
    r = look(world, stripped)
    assert r.status == "derived" and r.best.method == "same pixels"
    assert r.best.similarity == 1.0 and r.best.record_id == world["ids"][("image", 3)]
    assert look(world, with_metadata(world["images"][3])).status == "identical"


def test_pil_image_and_unrelated_image(world: dict[str, Any]) -> None:
    r = look(world, world["images"][4].resize((200, 150)))  # a PIL image: no bytes to hash
    assert r.status == "derived" and r.best.record_id == world["ids"][("image", 4)]
    assert look(world, encode(picture(1234))).status == "no_match"
    plain = look(world, encode(Image.new("RGB", (100, 100), (1, 2, 3))))
    assert plain.status == "too_short" and "too plain" in plain.detail


def test_missing_record_is_not_a_match(world: dict[str, Any]) -> None:
    world["fp"].add("01900000-0000-7000-8000-000000000000", essay(77), "text/plain")
    r = look(world, essay(77) + " Changed.")
    assert r.status == "no_match" and "not in this store" in r.detail


# ---------------------------------------------------------------- CLI


def cli(w: dict[str, Any], *argv: str) -> list[str]:
    return [*argv, "--db", str(w["db"]), "--home", str(w["home"])]


def test_cli_verify_fuzzy(world: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    world["fp"].flush()
    tmp = world["tmp"]
    original = tmp / "original.txt"
    original.write_text(world["texts"][8])
    edited = tmp / "edited.txt"
    edited.write_text(world["texts"][8].replace("the", "teh", 2))
    assert main(cli(world, "verify", "--fuzzy", str(original))) == 0
    assert "VERIFIED" in capsys.readouterr().out
    assert main(cli(world, "verify", "--fuzzy", str(edited))) == 1  # a lead is not a proof
    out = capsys.readouterr().out
    assert out.startswith("DERIVED") and world["ids"][("text", 8)] in out
    assert "similarity" in out and "signed and logged" in out and "matches" in out
    assert main(cli(world, "verify", "--fuzzy", str(edited), "--json")) == 1
    data = json.loads(capsys.readouterr().out)
    assert (
        data["status"] == "derived" and data["matches"][0]["record_id"] == world["ids"][("text", 8)]
    )
    assert main(cli(world, "verify", "--fuzzy", "--text", "far too short")) == 1
    assert capsys.readouterr().out.startswith("TOO SHORT")
    assert main(cli(world, "verify", "--fuzzy", "--text", essay(4242))) == 1
    assert capsys.readouterr().out.startswith("NO MATCH")


def test_cli_verify_fuzzy_image_and_errors(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    tmp = world["tmp"]
    jpg = tmp / "copy.jpg"
    jpg.write_bytes(encode(world["images"][5].resize((200, 150)), "JPEG", quality=60))
    assert main(cli(world, "verify", "--fuzzy", str(jpg))) == 1
    out = capsys.readouterr().out
    assert out.startswith("DERIVED") and world["ids"][("image", 5)] in out
    pdf = tmp / "doc.pdf"
    pdf.write_bytes(b"%PDF-1.7\n\x00\x01\x02")
    assert main(cli(world, "verify", "--fuzzy", str(pdf))) == 2
    assert "application/pdf is not supported" in capsys.readouterr().err
    assert main(cli(world, "verify", "--fuzzy", "--record", "x", str(jpg))) == 2
    assert "--fuzzy does not combine with --record" in capsys.readouterr().err


def test_cli_fingerprint_maintenance(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    pm, fp = world["pm"], world["fp"]
    model = provmark.Model("acme/writer", version="2")
    text = essay(31)
    with pm.record(model=model, input="late") as rec:
        rec.set_output(text)
    pm.flush()
    path = world["tmp"] / "late.txt"
    path.write_text(text)
    assert main(cli(world, "fingerprint", "add", str(path))) == 0
    assert "fingerprinted" in capsys.readouterr().out
    fp.flush()
    edited = text.replace("the", "teh", 3)
    assert look(world, edited).best.record_id == rec.record_id
    not_ours = world["tmp"] / "other.txt"
    not_ours.write_text(essay(32))
    assert main(cli(world, "fingerprint", "add", str(not_ours))) == 1  # not a recorded output
    assert "output_hash" in capsys.readouterr().err
    assert main(cli(world, "fingerprint", "show", rec.record_id)) == 0
    assert "words" in capsys.readouterr().out
    assert main(cli(world, "fingerprint", "stats", "--json")) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["kinds"]["text"]["items"] == 21 and stats["kinds"]["image"]["items"] == 10
    assert main(cli(world, "fingerprint", "stats")) == 0
    assert "capture cost p50" in capsys.readouterr().out
    assert main(cli(world, "fingerprint", "remove", rec.record_id)) == 0
    capsys.readouterr()
    assert look(world, edited).status == "no_match"
    fp.add("01900000-0000-7000-8000-00000000beef", essay(33), "text/plain")
    fp.flush()
    assert main(cli(world, "fingerprint", "prune")) == 0
    assert "1 record(s)" in capsys.readouterr().out
    assert main(cli(world, "fingerprint", "clear")) == 2
    assert main(cli(world, "fingerprint", "clear", "--yes")) == 0
    assert "cleared 30" in capsys.readouterr().out


def test_cli_subprocess_exit_codes(world: dict[str, Any]) -> None:
    world["fp"].flush()
    copy = world["tmp"] / "copy.png"
    copy.write_bytes(encode(world["images"][6].resize((160, 120))))
    run = subprocess.run(
        [sys.executable, "-m", "provmark.cli", *cli(world, "verify", "--fuzzy", str(copy))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1 and run.stdout.startswith("DERIVED"), run.stderr
    assert world["ids"][("image", 6)] in run.stdout


# ---------------------------------------------------------------- C2PA


def test_soft_binding_assertion_in_a_c2pa_manifest(world: dict[str, Any]) -> None:
    c2pa = pytest.importorskip("c2pa", reason="c2pa-python is not installable here")
    from provmark.export.c2pa_certs import make_dev_cert
    from provmark.softbind import image as sbimage

    data = with_metadata(world["images"][0])
    assertion = soft_binding_assertion(data, "image/png")
    assert assertion["label"] == "c2pa.soft-binding"
    assert [b["scope"] != {} for b in assertion["data"]["blocks"]] == [False, True]
    cert = make_dev_cert()
    definition = {
        "claim_generator_info": [{"name": "provmark-test", "version": "1"}],
        "title": "out.png",
        "assertions": [
            {
                "label": "c2pa.actions.v2",
                "data": {"actions": [{"action": "c2pa.created", "digitalSourceType": SOURCE}]},
            },
            assertion,
        ],
    }
    with (
        c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": False}}}) as ctx,
        c2pa.Builder(definition, context=ctx) as builder,
    ):
        info = c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, cert.chain_pem, cert.key_pem, None)
        with c2pa.Signer.from_info(info) as signer:
            out = io.BytesIO()
            builder.sign(signer, "image/png", io.BytesIO(data), out)
    report = json.loads(c2pa.Reader("image/png", io.BytesIO(out.getvalue())).json())
    manifest = report["manifests"][report["active_manifest"]]
    found = {a["label"]: a["data"] for a in manifest["assertions"]}["c2pa.soft-binding"]
    assert found["alg"] == "dev.provmark.imagehash.1"
    # anyone can recompute the published hashes from the pixels
    codes = sbimage.fingerprint_image(out.getvalue(), world["fp"].keyed).codes
    values = [base64.b64decode(b["value"]) for b in found["blocks"]]
    assert values == [c.phash.to_bytes(8, "big") + c.dhash.to_bytes(8, "big") for c in codes]
    # text: keyed, only with the store's key
    assert soft_binding_assertion(world["texts"][0]) is None
    keyed = soft_binding_assertion(world["texts"][0], text_key=b"k" * 32)
    assert keyed is not None and keyed["data"]["alg"] == "dev.provmark.text-minhash.2"
    assert soft_binding_assertion(b"%PDF-1.7\n\x00\x01") is None


def test_capture_time_fingerprints_find_an_edited_copy(tmp_path: Path) -> None:
    """provmark.open(fingerprint=True): captured outputs are fingerprinted on the writer
    thread; an edited copy is a lead (derived), the original is proven (identical)."""
    text = (
        "The quarterly report shows revenue growth in every region. Costs fell by four "
        "percent while margins improved. The board approved the new hiring plan. "
    ) * 3
    with provmark.open(tmp_path / "p.db", home=tmp_path / "home", fingerprint=True) as pm:

        @pm.capture(model="acme/summarizer")
        def summarize(prompt: str) -> str:
            return text

        secret = (
            "Private memo: the merger talks continue next week in Zurich. Legal reviews the "
            "draft terms on Monday and the bankers expect a signed letter by Friday. "
        ) * 3

        @pm.capture(model="acme/summarizer", fingerprint=False)
        def private(prompt: str) -> str:
            return secret

        summarize("q3")
        private("q3")
        assert pm.verify(text, fuzzy=True).status == "identical"
        edited = pm.verify(text.replace("revenue", "revenu", 1), fuzzy=True)
        assert edited.status == "derived"
        assert pm.verify(secret, fuzzy=True).status == "identical"  # exact still proven
        assert pm.verify_fuzzy(secret.replace("merger", "merge", 1)).status == "no_match"


@pytest.mark.postgres
def test_fingerprints_in_a_postgresql_store(tmp_path: Path, pg_url: str) -> None:
    """A PostgreSQL store keeps the fingerprints in its database (no file beside the
    keys), and an edited copy is still found after reopening."""
    text = (
        "The committee approved the budget after a long debate about healthcare costs. "
        "Education spending rises by three percent and the vote on transport moves to May. "
    ) * 3
    with provmark.open(pg_url, home=tmp_path / "home", fingerprint=True) as pm:
        summarize = pm.capture(model="acme/summarizer")(lambda prompt: text)
        summarize("minutes")
        assert pm.verify(text, fuzzy=True).status == "identical"
        edited = pm.verify(text.replace("committee", "comittee", 1), fuzzy=True)
        assert edited.status == "derived"
    assert not list((tmp_path / "home").glob("softbind-*.db"))
    with provmark.open(pg_url, home=tmp_path / "home", fingerprint=True) as pm:  # reopened
        assert pm.verify(text.replace("budget", "budgets", 1), fuzzy=True).status == "derived"
