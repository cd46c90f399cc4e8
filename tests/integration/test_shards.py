"""Two shards of one log on one PostgreSQL, one signed index, verified end to end."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from server_harness import make_record

from provmark.errors import RecordError, VerificationError
from provmark.log.note import sign_note, verifier_key_string
from provmark.shards import ShardedLog, by_month, by_tag, verify_sharded_bundle

pytest.importorskip("provmark.store.postgres")
NAME = "provmark.test/log"


def tenant_record(tenant: str, text: str) -> dict[str, object]:
    return make_record(text, tags={"tenant": tenant})


def open_log(url: str, home: Path) -> ShardedLog:
    return ShardedLog(url, ["acme", "globex"], name=NAME, home=home, route=by_tag("tenant"))


def test_two_shards_one_index_verified_end_to_end(pg_url: str, tmp_path: Path) -> None:
    log = open_log(pg_url, tmp_path)
    try:
        acme = log.ingest([tenant_record("acme", f"acme {i}") for i in range(5)])
        at_five = log.bundle(acme[0])  # acme's log has 5 entries now
        globex = log.ingest([tenant_record("globex", f"globex {i}") for i in range(3)])
        mixed = log.ingest([tenant_record("globex", "g"), tenant_record("acme", "a")])
        a, g = log.shards["acme"], log.shards["globex"]
        # two logs, each with its own origin, tree and checkpoints (and sequencer lock)
        assert a.store.origin == f"{NAME}/acme" and g.store.origin == f"{NAME}/globex"
        assert a.store.latest_checkpoint().size == 6  # type: ignore[union-attr]
        assert g.store.latest_checkpoint().size == 4  # type: ignore[union-attr]
        key = log.index_key  # the one key a verifier pins, for every shard
        for rid in (*acme, *globex, *mixed):
            assert verify_sharded_bundle(log.bundle(rid), key).record_id == rid
        bundle = log.bundle(acme[0])

        stranger = Ed25519PrivateKey.generate()
        with pytest.raises(VerificationError) as err:  # pinned: another key for the index
            verify_sharded_bundle(bundle, verifier_key_string(NAME, stranger.public_key()))
        assert err.value.check == "shard_index"
        forged = copy.deepcopy(bundle)  # an index listing the attacker's log, self-signed
        forged["shard_index"] = sign_note(log.index.body(), NAME, stranger)
        with pytest.raises(VerificationError, match="shard_index"):
            verify_sharded_bundle(forged, key)
        stray = copy.deepcopy(bundle)  # a validly signed index that does not list this log
        stray["shard_index"] = sign_note(
            log.index.body().replace(f"{NAME}/acme", f"{NAME}/elsewhere"),
            NAME,
            a.log.note_signing_key(),
        )
        with pytest.raises(VerificationError, match="not a shard"):
            verify_sharded_bundle(stray, key)
        del stray["shard_index"]
        with pytest.raises(VerificationError, match="no shard_index"):
            verify_sharded_bundle(stray, key)

        # acme's period ends: sealed at its final checkpoint; new records are refused
        index = log.seal("acme")
        sealed = next(s for s in index.shards if s.label == "acme")
        assert sealed.sealed is not None and sealed.sealed[0] == 6
        with pytest.raises(RecordError, match="sealed"):
            log.ingest([tenant_record("acme", "too late")])
        assert verify_sharded_bundle(log.bundle(acme[1]), key).record_id == acme[1]
        assert verify_sharded_bundle(log.bundle(globex[0]), key).record_id == globex[0]
        assert verify_sharded_bundle(at_five, key).record_id == acme[0]  # its own (old) index
        at_five["shard_index"] = log.index_note()  # the sealed index: size 5 is not final
        with pytest.raises(VerificationError, match="sealed at size 6"):
            verify_sharded_bundle(at_five, key)
    finally:
        log.close()
    again = open_log(pg_url, tmp_path)
    try:  # the signed index is kept in the database: still sealed after a restart
        assert again.index.version == 2 and again.index_key == key
        with pytest.raises(RecordError, match="sealed"):
            again.ingest([tenant_record("acme", "still too late")])
        assert verify_sharded_bundle(again.bundle(mixed[1]), key).record_id == mixed[1]
    finally:
        again.close()


def test_routes() -> None:
    assert by_month({"generated_at": "2026-12-06T20:00:00.000000Z"}) == "2026_12"
    with pytest.raises(RecordError, match=r"tags\.tenant"):
        by_tag("tenant")({"tags": {}})
