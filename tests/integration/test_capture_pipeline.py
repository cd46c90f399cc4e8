"""The capture pipeline works on its own: given a store, a key store, a record signer
and a seal, with no ``Provmark`` facade (issue 19). What it stores, the library reads
and verifies."""

from __future__ import annotations

import time
from pathlib import Path

from server_harness import make_record

import provmark
from provmark.capture.core import Outcome, Spec
from provmark.capture.drafts import DraftBuilder
from provmark.capture.model import Model
from provmark.capture.pipeline import CapturePipeline
from provmark.crypto.keys import LocalSigner
from provmark.crypto.keystore import FileKeyStore
from provmark.log.note import Checkpoint
from provmark.store.sqlite import SQLiteStore


def test_the_pipeline_captures_and_ingests_without_the_facade(tmp_path: Path) -> None:
    db, home = tmp_path / "p.db", tmp_path / "home"
    store = SQLiteStore(db)
    keys = FileKeyStore(home / "keys")
    store.put_public_keys(keys.public_keys())
    log_key = keys.signer("log")
    assert isinstance(log_key, LocalSigner)

    def seal(size: int, root: bytes) -> str:
        return Checkpoint(store.origin, size, root).sign(store.origin, log_key.private_key)

    pipeline = CapturePipeline(
        store,
        keys,
        keys.signer("records"),
        seal,
        DraftBuilder(),
        journal=tmp_path / "p.db.journal",
        durable=True,
        hash_user_ids=True,
    )
    spec = Spec(model=Model("acme/m", version="1"))
    captured = pipeline.emit(Outcome(spec, time.time_ns(), input="the prompt", output="the answer"))
    record = make_record("ingested")
    (ingested,) = pipeline.ingest([record])
    pipeline.flush()
    assert pipeline.stats()["pending"] == 0
    pipeline.close()
    store.close()
    assert not (tmp_path / "p.db.journal").read_bytes()  # everything committed

    with provmark.open(db, home=home) as pm:
        assert pm.verify("the answer").record.record_id == captured
        got = pm.verify("ingested").record
        assert got.record_id == ingested == record["record_id"]
        assert got.actor is not None and got.actor.user_id == pm.hash_user_id(
            "jane.doe@example.com"
        )
        # no privacy engine: the snapshot sent is kept, the captured one rendered as given
        assert got.input is not None and got.input.snapshot == record["input"]["snapshot"]
        first = pm.get(captured)
        assert first.input is not None and first.input.snapshot == "the prompt"
