"""Fingerprints of scheme 1 (word shingles, an earlier provmark) stay searchable.

Records keep only the hash of an output, so old fingerprints cannot be rebuilt: a store
that holds them is upgraded in place (new columns, new parameters) and every lookup also
scores them the old way, while new outputs get scheme-2 fingerprints.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import provmark
from provmark.softbind import Fingerprinter, fuzzy_verify, text_v1
from provmark.softbind import store as sbstore
from provmark.softbind.fingerprinter import key_id, softbind_key
from provmark.softbind.store import Item

# the tables as scheme 1 made them (no scheme or anchors columns)
OLD_SCHEMA = """
CREATE TABLE softbind_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE softbind_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT, record_id TEXT NOT NULL, kind TEXT NOT NULL,
    media_type TEXT, size INTEGER NOT NULL, shingles INTEGER, width INTEGER, height INTEGER,
    signature BLOB, parts BLOB NOT NULL, cost_us INTEGER NOT NULL, created_at REAL NOT NULL,
    UNIQUE (record_id, kind)
);
CREATE TABLE softbind_bands (key INTEGER NOT NULL, item INTEGER NOT NULL,
    PRIMARY KEY (key, item)) WITHOUT ROWID;
CREATE TABLE softbind_parts (hash INTEGER NOT NULL, item INTEGER NOT NULL, ord INTEGER NOT NULL,
    kind INTEGER NOT NULL, words INTEGER NOT NULL, PRIMARY KEY (hash, item, ord)) WITHOUT ROWID;
CREATE TABLE softbind_codes (item INTEGER NOT NULL, region INTEGER NOT NULL,
    phash INTEGER NOT NULL, dhash INTEGER NOT NULL, colour INTEGER NOT NULL,
    PRIMARY KEY (item, region)) WITHOUT ROWID;
"""
OLD_TEXT = (
    "The quarterly report explains how the signing keys were rotated in March. "
    "Every record made before the rotation still verifies against the old public key. "
    "Auditors can fetch the key set from the well-known address and pin it offline. "
    "The transparency log only grew during the rotation, as the consistency proofs show."
)
NEW_TEXT = (
    "Witnesses cosign each checkpoint after checking that the tree only grew since the "
    "last one they saw. A verifier that trusts two witnesses rejects a split view. "
    "The web interface lists the cosignatures beside each checkpoint of the log."
)


def test_scheme_1_fingerprints_are_upgraded_in_place_and_still_found(tmp_path: Path) -> None:
    db, home = tmp_path / "p.db", tmp_path / "home"
    with provmark.open(db, home=home, fingerprint=False) as pm:
        with pm.record(model=provmark.Model("acme/writer"), input="q1") as rec:
            rec.set_output(OLD_TEXT)
        old_id = rec.record_id
        key = softbind_key(pm)
    con = sqlite3.connect(db)
    con.executescript(OLD_SCHEMA)
    con.executemany(
        "INSERT INTO softbind_meta VALUES (?, ?)",
        [("key_id", key_id(key)), ("params", sbstore.PARAMS_V1)],
    )
    con.commit()
    con.close()
    old = SQLiteFingerprintStoreV1(db)  # what the previous version wrote
    old.put_v1(old_id, OLD_TEXT, key)

    with provmark.open(db, home=home) as pm:
        fp = Fingerprinter.for_provmark(pm)
        assert fp.store.legacy_text
        with pm.record(model=provmark.Model("acme/writer"), input="q2") as rec:
            rec.set_output(NEW_TEXT)
        pm.flush()
        (old_item,) = fp.store.items_of(old_id)
        assert old_item["scheme"] == 1
        edited = OLD_TEXT.replace("quarterly", "quartrely").replace("Auditors", "Auditers")
        result = fuzzy_verify(pm, edited, fingerprinter=fp)
        assert result.status == "derived" and result.best is not None
        assert result.best.record_id == old_id
        new = fuzzy_verify(pm, NEW_TEXT.replace("cosign", "co-sign"), fingerprinter=fp)
        assert new.best is not None and new.best.record_id == rec.record_id
        (new_item,) = fp.store.items_of(rec.record_id)
        assert new_item["scheme"] == 2 and new_item["anchors"] > 0
        assert fp.store.remove(old_id) == 1  # bands of scheme 1 go with it
        assert fp.store.stats()["rows"]["softbind_bands"] == 0
        fp.close()


class SQLiteFingerprintStoreV1:
    """Writes rows exactly as scheme 1 did (bands, document/paragraph/sentence parts)."""

    def __init__(self, db: Path) -> None:
        self.db = db

    def put_v1(self, record_id: str, text: str, key: bytes) -> None:
        tp = text_v1.fingerprint_text(text, text_v1.Keyed(key))
        item = Item(
            record_id,
            "text",
            "text/plain",
            tp.words,
            5,
            shingles=tp.shingles,
            signature=tp.signature.astype("<u4").tobytes(),
        )
        import numpy as np

        con = sqlite3.connect(self.db)
        cur = con.execute(
            "INSERT INTO softbind_items (record_id, kind, media_type, size, shingles, signature,"
            " parts, cost_us, created_at) VALUES (?, 'text', 'text/plain', ?, ?, ?, ?, 5, 0)",
            (
                item.record_id,
                item.size,
                item.shingles,
                item.signature,
                np.array([p.hash for p in tp.parts], dtype=np.int64).tobytes(),
            ),
        )
        con.executemany(
            "INSERT OR IGNORE INTO softbind_bands VALUES (?, ?)",
            [(k, cur.lastrowid) for k in tp.bands],
        )
        con.executemany(
            "INSERT OR IGNORE INTO softbind_parts VALUES (?, ?, ?, ?, ?)",
            [(p.hash, cur.lastrowid, p.ordinal, p.kind, p.words) for p in tp.parts],
        )
        con.commit()
        con.close()
