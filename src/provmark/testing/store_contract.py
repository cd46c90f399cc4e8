"""The ``Store`` contract as a reusable test base class.

Every store (``SQLiteStore``, ``PostgresStore``, or your own implementation of the
``provmark.store.Store`` protocol) must pass the same tests: appends are atomic and
idempotent, the Merkle tree and checkpoints match the rows, queries filter and page
correctly, two sequencers appending at once keep one consistent log. Subclass
:class:`StoreContract` in a test module and give it a ``make_store`` fixture that
returns a factory of store instances on one fresh log (each call = one process's view)::

    import pytest
    from provmark.store.sqlite import SQLiteStore
    from provmark.testing import StoreContract

    class TestMyStore(StoreContract):
        @pytest.fixture
        def make_store(self, tmp_path):
            return lambda: SQLiteStore(tmp_path / "contract.db")

Needs pytest (it is a test helper).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .._internal.writer import sign_draft
from ..crypto.keys import LocalSigner, PublicKey
from ..errors import ConfigError
from ..log.merkle import (
    CompactRange,
    consistency_proof,
    inclusion_proof,
    root_at,
    verify_consistency,
    verify_inclusion,
)
from ..log.note import NoteVerifier, open_checkpoint
from ..record import format_time, new_record_id, validate_record
from ..store.base import Entry, Query, Store
from .feature_contract import FeatureContract

__all__ = ["ContractLog", "StoreContract", "StoreFactory", "check_tree"]

T0 = datetime(2026, 1, 1, tzinfo=UTC)

StoreFactory = Callable[[], Store]


class ContractLog:
    """Record signer + checkpoint sealer, as Provmark's writer uses them, over any store."""

    def __init__(self) -> None:
        self.signer = LocalSigner(Ed25519PrivateKey.generate())
        self.log_key = Ed25519PrivateKey.generate()
        self.tick = 0

    def verifier(self, origin: str) -> NoteVerifier:
        return NoteVerifier.from_public_key(origin, self.log_key.public_key())

    def seal_for(self, store: Store) -> Callable[[int, bytes], str]:
        from ..log.note import Checkpoint

        return lambda size, root: Checkpoint(store.origin, size, root).sign(
            store.origin, self.log_key
        )

    def entries(self, n: int, **fields: Any) -> list[Entry]:
        out = []
        for _ in range(n):
            self.tick += 1
            draft: dict[str, Any] = {
                "record_id": new_record_id(),
                "generated_at": format_time(T0 + timedelta(seconds=self.tick)),
                "model": {"name": fields.get("model", "acme/sum")},
                "operation": fields.get("operation", "text_completion"),
                "status": fields.get("status", "ok"),
                "output": {
                    "sha256": fields.get("output")
                    or hashlib.sha256(f"out-{self.tick}".encode()).hexdigest()
                },
            }
            if "actor" in fields:
                draft["actor"] = {"user_id": fields["actor"]}
            if "tags" in fields:
                draft["tags"] = fields["tags"]
            out.append(sign_draft(validate_record(draft).payload_dict(), self.signer))
        return out

    def append(self, store: Store, entries: list[Entry]) -> Any:
        return store.append(entries, self.seal_for(store))


def check_tree(store: Store, log: ContractLog) -> None:
    """Every row sits at its leaf, indexes are contiguous, the signed root is the tree's."""
    size = store.tree_size()
    rng = CompactRange()
    indexes = []
    for rec in store.iter_records():
        indexes.append(rec.index)
        assert store.get_nodes([(0, rec.index)]) == [rec.leaf_hash()]
        rng.extend([rec.leaf_hash()])
    assert indexes == list(range(size))
    assert store.count() == size
    latest = store.latest_checkpoint()
    assert latest is not None and latest.size == size
    checkpoint, _ = open_checkpoint(latest.note, [log.verifier(store.origin)], origin=store.origin)
    assert checkpoint.size == size and checkpoint.root_hash == rng.root() == latest.root
    assert root_at(size, store) == latest.root


class StoreContract(FeatureContract):
    """The tests every store must pass; subclass it and define ``make_store``. The
    capability tests (``FeatureContract``) are skipped for what the store does not offer."""

    @pytest.fixture()
    def store(self, make_store: StoreFactory) -> Store:
        return make_store()

    @pytest.fixture()
    def log(self) -> ContractLog:
        return ContractLog()

    def test_empty_store(self, store: Store) -> None:
        assert store.tree_size() == 0 and store.count() == 0
        assert store.latest_checkpoint() is None
        assert store.checkpoints() == []
        assert store.get(new_record_id()) is None
        assert store.get("pm-20260101-abcdef") is None
        assert store.get("not-an-id") is None
        assert store.has([new_record_id(), "junk"]) == set()
        assert store.by_output("0" * 64) == []
        assert list(store.iter_records()) == []
        assert store.find(Query()).records == []
        assert store.stats()["records"] == 0

    def test_append_get_and_checkpoint(self, store: Store, log: ContractLog) -> None:
        entries = log.entries(5, tags={"team": "a"})
        cp = log.append(store, entries)
        assert cp.size == 5 and store.tree_size() == 5 and store.count() == 5
        for i, e in enumerate(entries):
            got = store.get(e.record_id)
            assert got is not None and got.index == i
            assert got.payload == e.payload and got.signature == e.signature
            by_slug = store.get(e.slug)
            assert by_slug is not None and by_slug.record_id == e.record_id
            record = got.record()
            assert record.record_id == e.record_id and record.log is not None
            assert record.tags == {"team": "a"}
        assert store.has([e.record_id for e in entries] + [new_record_id()]) == {
            e.record_id for e in entries
        }
        assert store.latest_checkpoint() == cp
        check_tree(store, log)

    def test_append_is_idempotent(self, store: Store, log: ContractLog) -> None:
        first = log.entries(4)
        cp1 = log.append(store, first)
        again = log.append(store, first)  # a retried batch: nothing new
        assert again.size == 4 and again.root == cp1.root and store.count() == 4
        more = log.entries(3)
        cp2 = log.append(store, [first[0], more[0], more[0], first[2], more[1], more[2]])
        assert cp2.size == 7 and store.count() == 7
        assert [r.record_id for r in store.iter_records(4)] == [e.record_id for e in more]
        check_tree(store, log)

    def test_by_output_in_log_order(self, store: Store, log: ContractLog) -> None:
        sha = hashlib.sha256(b"same text").hexdigest()
        log.append(store, log.entries(2))
        same = log.entries(3, output=sha)
        log.append(store, same[:2])
        log.append(store, log.entries(1) + same[2:])
        found = store.by_output(sha)
        assert [r.record_id for r in found] == [e.record_id for e in same]
        assert [r.index for r in found] == sorted(r.index for r in found)

    def test_every_output_of_a_v2_record_is_found(self, store: Store, log: ContractLog) -> None:
        """A v2 record with several outputs: by_output and find(output=) reach each of them."""
        shas = [hashlib.sha256(f"image {i}".encode()).hexdigest() for i in range(3)]
        draft = {
            "record_id": new_record_id(),
            "generated_at": format_time(T0),
            "model": {"name": "acme/painter"},
            "operation": "image_generation",
            "outputs": [{"sha256": sha, "size": 10} for sha in shas],
        }
        multi = sign_draft(validate_record(draft).payload_dict(), log.signer)
        assert multi.outputs == tuple(shas[1:])
        log.append(store, [*log.entries(2), multi, *log.entries(1, output=shas[2])])
        for sha in shas:
            found = [r.record_id for r in store.by_output(sha)]
            assert found[0] == multi.record_id
            assert [r.record_id for r in store.find(Query(output=sha)).records][
                -1
            ] == multi.record_id
        assert len(store.by_output(shas[2])) == 2  # the secondary output and a later primary one
        log.append(store, [multi])  # idempotent: nothing is indexed twice
        assert [r.record_id for r in store.by_output(shas[1])] == [multi.record_id]

    def test_find_filters(self, store: Store, log: ContractLog) -> None:
        log.append(
            store, log.entries(3, model="m1", actor="alice", tags={"app": "x", "env": "prod"})
        )
        log.append(
            store, log.entries(2, model="m2", actor="bob", operation="chat", tags={"app": "y"})
        )
        log.append(
            store, log.entries(1, model="m2", status="error", tags={"app": "x", "env": "dev"})
        )

        def ids(**kw: Any) -> list[int]:
            return [r.index for r in store.find(Query(**kw)).records]

        assert ids() == [5, 4, 3, 2, 1, 0]
        assert ids(order="asc", limit=2) == [0, 1]
        assert ids(model="m1") == [2, 1, 0]
        assert ids(model="m2", operation="chat") == [4, 3]
        assert ids(actor="bob") == [4, 3]
        assert ids(status="error") == [5]
        assert ids(status="ok", model="m2") == [4, 3]
        assert ids(tags={"app": "x"}) == [5, 2, 1, 0]
        assert ids(tags={"app": "x", "env": "prod"}) == [2, 1, 0]
        assert ids(tags={"app": "nope"}) == []
        out = next(store.iter_records()).record().output
        assert out is not None and ids(output=out.sha256) == [0]
        # times: tick k is T0 + k seconds; records 0..5 have ticks 1..6
        since = format_time(T0 + timedelta(seconds=3))
        until = format_time(T0 + timedelta(seconds=5))
        assert ids(since=since) == [5, 4, 3, 2]
        assert ids(until=until) == [3, 2, 1, 0]
        assert ids(since=since, until=until) == [3, 2]

    def test_find_cursor_pagination(self, store: Store, log: ContractLog) -> None:
        for _ in range(5):
            log.append(store, log.entries(7, tags={"k": "v"}))
        for order, tags in (("desc", {}), ("asc", {}), ("desc", {"k": "v"})):
            seen: list[int] = []
            cursor = None
            pages = 0
            while True:
                page = store.find(Query(limit=4, cursor=cursor, order=order, tags=tags))
                seen.extend(r.index for r in page.records)
                pages += 1
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
            want = list(range(35)) if order == "asc" else list(range(34, -1, -1))
            assert seen == want and pages == 9
        exact = store.find(Query(limit=35))
        assert len(exact.records) == 35 and exact.next_cursor is None
        with pytest.raises(ConfigError):
            store.find(Query(cursor="bm90IGEgY3Vyc29y"))

    def test_checkpoints_and_proofs(self, store: Store, log: ContractLog) -> None:
        sizes = []
        for n in (1, 2, 5, 8, 1, 13):
            sizes.append(log.append(store, log.entries(n)).size)
        assert sizes == [1, 3, 8, 16, 17, 30]
        listed = store.checkpoints()
        assert [c.size for c in listed] == sizes[::-1]
        assert [c.size for c in store.checkpoints(limit=2)] == [30, 17]
        verifier = log.verifier(store.origin)
        for size in sizes:
            cp = store.checkpoint(size)
            assert cp is not None and cp.root == root_at(size, store)
            opened, _ = open_checkpoint(cp.note, [verifier], origin=store.origin)
            assert opened.size == size and opened.root_hash == cp.root
        assert store.checkpoint(4) is None
        latest = store.latest_checkpoint()
        assert latest is not None
        for rec in store.iter_records():
            for cp_size in (s for s in sizes if s > rec.index):
                root = root_at(cp_size, store)
                proof = inclusion_proof(rec.index, cp_size, store)
                verify_inclusion(rec.leaf_hash(), rec.index, cp_size, proof, root)
        for old in sizes:
            for new in sizes:
                if old <= new:
                    proof = consistency_proof(old, new, store)
                    verify_consistency(old, new, root_at(old, store), root_at(new, store), proof)
        with pytest.raises(KeyError):
            store.get_nodes([(0, 30)])
        check_tree(store, log)

    def test_iter_records_range(self, store: Store, log: ContractLog) -> None:
        entries = log.entries(25)
        log.append(store, entries)
        assert [r.index for r in store.iter_records(20)] == [20, 21, 22, 23, 24]
        assert [r.record_id for r in store.iter_records(3, 6)] == [
            e.record_id for e in entries[3:6]
        ]

    def test_public_keys(self, store: Store) -> None:
        signer = LocalSigner(Ed25519PrivateKey.generate())
        key = PublicKey.from_json(
            {
                "key_id": signer.key_id,
                "alg": signer.alg,
                "public_key": signer.public_key_pem(),
                "not_before": "2026-01-01T00:00:00Z",
                "purpose": "records",
            }
        )
        store.put_public_keys([key])
        store.put_public_keys([key])  # upsert, not a duplicate
        assert [k.key_id for k in store.public_keys()] == [signer.key_id]

    def test_reopen_keeps_origin_and_log(self, make_store: StoreFactory, log: ContractLog) -> None:
        first = make_store()
        log.append(first, log.entries(3))
        origin = first.origin
        first.close()
        second = make_store()
        assert second.origin == origin and second.tree_size() == 3
        log.append(second, log.entries(2))
        check_tree(second, log)

    def test_concurrent_appends_keep_the_tree_consistent(
        self, make_store: StoreFactory, log: ContractLog
    ) -> None:
        """Two sequencers (two store instances, as two processes) append at once."""
        stores = [make_store(), make_store()]
        batches = [[log.entries(20) for _ in range(10)] for _ in stores]
        errors: list[BaseException] = []
        start = threading.Barrier(len(stores))

        def run(store: Store, work: list[list[Entry]]) -> None:
            try:
                start.wait()
                for batch in work:
                    log.append(store, batch)
                    log.append(store, batch[:5])  # retries of a stored batch change nothing
            except BaseException as exc:
                errors.append(exc)

        threads = [
            threading.Thread(target=run, args=pair) for pair in zip(stores, batches, strict=True)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors
        assert stores[0].tree_size() == stores[1].tree_size() == 400
        check_tree(stores[0], log)
        stored = {r.record_id for r in stores[1].iter_records()}
        assert stored == {e.record_id for work in batches for b in work for e in b}
        # Each batch went in whole, in one piece: its records have consecutive indexes.
        for work in batches:
            for batch in work:
                idx = [stores[0].get(e.record_id).index for e in batch]  # type: ignore[union-attr]
                assert idx == list(range(idx[0], idx[0] + len(batch)))

    def test_stats(self, store: Store, log: ContractLog) -> None:
        log.append(store, log.entries(2))
        stats = store.stats()
        assert stats["records"] == 2 and stats["tree_size"] == 2 and stats["checkpoint_size"] == 2
        assert stats["origin"] == store.origin and stats["backend"] in ("sqlite", "postgresql")
