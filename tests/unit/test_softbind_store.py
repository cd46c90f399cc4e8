"""SQLite fingerprint tables: write, read, replace, remove, clear, key and parameter checks."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

import provmark
from provmark.errors import ConfigError, StoreError
from provmark.softbind import image as img
from provmark.softbind import store as sbstore
from provmark.softbind import text as txt
from provmark.softbind.store import Item, SQLiteFingerprintStore

KEY = txt.Keyed(b"k" * 32)
TEXT = (
    "The auditor reads the signed record and checks the log. The model wrote a summary "
    "for the board last week. Every checkpoint is signed by the log key and published."
)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "p.db"
    provmark.open(path, home=tmp_path / "home", fingerprint=False).close()
    return path


def text_item(record_id: str, text: str = TEXT) -> Item:
    tp = txt.fingerprint_text(text, KEY)
    return Item(
        record_id=record_id,
        kind="text",
        media_type="text/plain",
        size=tp.words,
        cost_us=10,
        shingles=tp.shingles,
        signature=tp.signature.astype("<u4").tobytes(),
        anchors=len(tp.anchors),
        parts=[(h, txt.ANCHOR, s, 0) for h, s in zip(tp.anchors, tp.anchor_sentences, strict=True)],
    )


def image_item(record_id: str, seed: int = 1) -> Item:
    codes = [img.Code(img.FULL, 2**63 + seed, 7, 0x808080), img.Code(img.CENTRE, 5, 6, 0x102030)]
    return Item(
        record_id,
        "image",
        "image/png",
        100,
        20,
        width=10,
        height=10,
        codes=codes,
        parts=[(seed, txt.PIXELS, 0, 0)],
    )


def test_refuses_a_file_that_is_not_provmark(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE invoices (x)").connection.commit()
    with pytest.raises(StoreError, match="not a provmark database"):
        SQLiteFingerprintStore(other)
    with pytest.raises(StoreError, match="no such"):
        SQLiteFingerprintStore(tmp_path / "missing.db")


def test_own_tables_beside_the_records(db: Path) -> None:
    SQLiteFingerprintStore(db).close()
    names = {r[0] for r in sqlite3.connect(db).execute("SELECT name FROM sqlite_master")}
    assert {"records", "softbind_items", "softbind_bands", "softbind_parts"} <= names
    with provmark.open(db, home=db.parent / "home") as pm:  # the record store still opens
        assert pm.store.count() == 0


def test_put_read_replace_remove(db: Path) -> None:
    store = SQLiteFingerprintStore(db)
    store.check("key-a")
    store.put([text_item("r1"), image_item("r2")])
    tp = txt.fingerprint_text(TEXT, KEY)
    parts = store.part_hits(tp.anchors)
    assert {p.kind for p in parts} == {txt.ANCHOR} and len(parts) == len(tp.anchors)
    (item,) = {p.item for p in parts}
    assert store.records([item]) == {item: "r1"}
    assert {p.ordinal for p in parts} == {0, 1, 2}  # the sentence of each anchor
    got = store.text_items([item])[item]
    assert np.array_equal(got.signature, tp.signature) and got.words == tp.words
    assert (got.scheme, got.anchors) == (2, len(tp.anchors))
    store.put([text_item("r1", TEXT + " And one more sentence for the record here.")])
    (replaced,) = store.items_of("r1")  # replaced, not added
    assert replaced["item"] != item and replaced["size"] > tp.words
    assert store.remove("r1") == 1 and store.remove("r1") == 0
    rows = store.stats()["rows"]
    assert rows["softbind_parts"] == 1  # the image's pixels
    store.close()


def test_image_codes_are_seen_by_another_connection(db: Path) -> None:
    a, b = SQLiteFingerprintStore(db), SQLiteFingerprintStore(db)
    probe = img.Probe(img.FULL, img.WHOLE, 2**63 + 1, 7, 0x808080, img.WHOLE_LIMITS, 1.0)
    assert b.code_hits([probe]) == []
    a.put([image_item("r9")])
    (hit,) = b.code_hits([probe])  # loaded on the next lookup
    assert (hit.phash_distance, hit.dhash_distance, hit.region) == (0, 0, img.FULL)
    assert b.records([hit.item]) == {hit.item: "r9"}
    wrong_shape = img.Probe(img.FULL, img.WHOLE, 2**63 + 1, 7, 0x808080, img.WHOLE_LIMITS, 2.0)
    assert b.code_hits([wrong_shape]) == []  # another aspect ratio
    other_colour = img.Probe(img.FULL, img.WHOLE, 2**63 + 1, 7, 0xFF0000, img.WHOLE_LIMITS, 1.0)
    assert b.code_hits([other_colour]) == []
    a.remove("r9")
    assert b.code_hits([probe]) != [] and b.records([hit.item]) == {}  # stale row, no record
    a.close()
    b.close()


def test_key_and_parameter_checks(db: Path) -> None:
    store = SQLiteFingerprintStore(db)
    store.check("key-a")
    store.check("key-a")
    with pytest.raises(ConfigError, match="another soft-binding key"):
        store.check("key-b")
    con = sqlite3.connect(db)
    con.execute("UPDATE softbind_meta SET value = 'text/0' WHERE key = 'params'")
    con.commit()
    with pytest.raises(ConfigError, match="other parameters"):
        store.check("key-a")
    assert store.clear() == 0
    store.check("key-b")  # a cleared store takes the new key
    store.close()


def test_stats_report_cost_and_size(db: Path) -> None:
    store = SQLiteFingerprintStore(db)
    store.check("key-a")
    store.put([text_item(f"r{i}") for i in range(5)] + [image_item("i1")])
    s = store.stats()
    assert s["kinds"]["text"]["items"] == 5 and s["kinds"]["text"]["cost_p50_ms"] == 0.01
    assert s["kinds"]["image"]["items"] == 1
    assert s["params"] == sbstore.PARAMS and s["key_id"] == "key-a"
    assert s["bytes"] is None or s["bytes"] > 0
    assert sorted(store.record_ids()) == ["i1", "r0", "r1", "r2", "r3", "r4"]
    store.close()
