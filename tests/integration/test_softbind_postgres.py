"""Fingerprints in PostgreSQL: several servers on one database answer for each other.

Real PostgreSQL (a database per test); two ``Provmark`` objects stand for two servers
with their own connection pools that share the soft-binding key (the same key home).
"""

from __future__ import annotations

import io
import random
import sqlite3
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

import provmark
from provmark.errors import ConfigError
from provmark.softbind import Fingerprinter, fuzzy_verify
from provmark.softbind import text as txt
from provmark.softbind.fingerprinter import key_id, softbind_key
from provmark.softbind.store import Item, SQLiteFingerprintStore
from provmark.softbind.store_pg import PostgresFingerprintStore

TEXT = (
    "The release notes describe how the ingest queue recovers after a broker restart. "
    "Messages that were acknowledged before the crash are never lost, and duplicates are "
    "dropped by record id when the worker stores them again. Operators can watch the "
    "backlog on the metrics page and page the on-call engineer when it keeps growing."
)


def scene(seed: int) -> bytes:
    rng = random.Random(seed)
    im = Image.new("RGB", (256, 192), (rng.randrange(256), 90, 40))
    draw = ImageDraw.Draw(im)
    for _ in range(12):
        x, y = rng.randrange(256), rng.randrange(192)
        c = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        draw.ellipse([x, y, x + rng.randint(20, 90), y + rng.randint(20, 70)], fill=c)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def jpeg(data: bytes) -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(data)).save(buf, "JPEG", quality=60)
    return buf.getvalue()


def test_two_servers_find_each_others_records(pg_url: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    a = provmark.open(pg_url, home=home)
    b = provmark.open(pg_url, home=home)
    try:
        assert isinstance(a.fingerprinter.store, PostgresFingerprintStore)  # on by default
        picture = scene(3)
        with a.record(model=provmark.Model("acme/writer"), input="notes") as rec:
            rec.set_output(TEXT)
        with a.record(model=provmark.Model("acme/painter"), input="a scene") as pic:
            pic.set_output(picture)
        a.flush()
        edited = TEXT.replace("acknowledged", "acknowleged").replace("Operators", "Operaters")
        found = b.verify_fuzzy(edited)
        assert found.status == "derived" and found.best is not None
        assert found.best.record_id == rec.record_id and found.best.verified is not None
        quote = " ".join(TEXT.split()[14:34])
        assert b.verify_fuzzy(quote).best.record_id == rec.record_id  # type: ignore[union-attr]
        image = b.verify_fuzzy(jpeg(picture))
        assert image.status == "derived" and image.best is not None
        assert image.best.record_id == pic.record_id
        # server b captures; a sees it on its next image lookup (codes topped up)
        other = scene(4)
        with b.record(model=provmark.Model("acme/painter"), input="another") as pic2:
            pic2.set_output(other)
        b.flush()
        again = a.verify_fuzzy(jpeg(other))
        assert again.best is not None and again.best.record_id == pic2.record_id
        stats = a.fingerprinter.store.stats()
        assert stats["kinds"]["text"]["items"] == 1 and stats["kinds"]["image"]["items"] == 2
        assert stats["bytes"] > 0
    finally:
        a.close()
        b.close()


def test_store_contract_on_postgres(pg_url: str, tmp_path: Path) -> None:
    with provmark.open(pg_url, home=tmp_path / "home", fingerprint=False) as pm:
        store = PostgresFingerprintStore(pm.store)
        store.check("key-a")
        with pytest.raises(ConfigError, match="another soft-binding key"):
            store.check("key-b")
        keyed = txt.Keyed(b"k" * 32)
        tp = txt.fingerprint_text(TEXT, keyed)
        item = Item(
            "r1",
            "text",
            "text/plain",
            tp.words,
            7,
            shingles=tp.shingles,
            signature=tp.signature.astype("<u4").tobytes(),
            anchors=len(tp.anchors),
            parts=[
                (h, txt.ANCHOR, s, 0) for h, s in zip(tp.anchors, tp.anchor_sentences, strict=True)
            ],
        )
        store.put([item])
        store.put([item])  # a re-add replaces
        hits = store.part_hits(tp.anchors)
        assert len(hits) == len(tp.anchors) and {h.kind for h in hits} == {txt.ANCHOR}
        (got,) = store.text_items({h.item for h in hits}).values()
        assert got.record_id == "r1" and got.anchors == len(tp.anchors) and got.scheme == 2
        assert list(store.record_ids()) == ["r1"]
        assert store.items_of("r1")[0]["cost_us"] == 7
        assert store.remove("r1") == 1 and store.part_hits(tp.anchors) == []
        assert store.clear() == 0


def test_a_fingerprint_file_of_an_earlier_version_is_imported(pg_url: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    with provmark.open(pg_url, home=home, fingerprint=False) as pm:
        with pm.record(model=provmark.Model("acme/writer"), input="old") as rec:
            rec.set_output(TEXT)
        key = softbind_key(pm)
        import hashlib

        name = f"softbind-{hashlib.sha256(pm.store.origin.encode()).hexdigest()[:16]}.db"
    old = home / name
    store = SQLiteFingerprintStore(old, standalone=True)  # what the earlier version kept
    store.check(key_id(key))
    fp = Fingerprinter(store, key)
    assert fp.add(rec.record_id, TEXT).stored
    fp.close()
    with provmark.open(pg_url, home=home) as pm:
        assert not old.exists() and old.with_name(name + ".imported").exists()
        result = fuzzy_verify(pm, TEXT.replace("restart", "restrat"))
        assert result.best is not None and result.best.record_id == rec.record_id
    rows = sqlite3.connect(old.with_name(name + ".imported")).execute(
        "SELECT count(*) FROM softbind_items"
    )
    assert rows.fetchone()[0] == 1  # the file is kept, renamed
