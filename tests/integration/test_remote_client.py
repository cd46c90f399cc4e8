"""``provmark.open("http://...")`` against a real server process: capture, read, verify,
and delivery when the server goes away and comes back (journal, replay, no duplicates)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_harness import Server, make_record, start_server

import provmark
from provmark._internal.remote_journal import Journal
from provmark.remote import RemoteProvmark


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("remote"), "--max-batch", "50")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def dev_token(server: Server) -> str:
    return server.token("developer")


def remote(server: Server, token: str, journal: Path, **options: object) -> RemoteProvmark:
    pm = provmark.open(server.url, token=token, journal_dir=journal, retry_max=1.0, **options)
    assert isinstance(pm, RemoteProvmark)
    return pm


def count(server: Server, token: str, model: str) -> int:
    with server.client(token) as c:
        return int(c.get("/v1/records", params={"model": model, "limit": 1000}).json()["count"])


def tree_size(server: Server, token: str) -> int:
    with server.client(token) as c:
        return int(c.get("/v1/checkpoints/latest").json()["size"])


def test_capture_find_get_verify_bundle(server: Server, dev_token: str, tmp_path: Path) -> None:
    name = f"acme/remote-{uuid.uuid4().hex[:6]}"
    with remote(server, dev_token, tmp_path / "j") as pm:
        model = provmark.Model(name, version="1.0")

        @pm.capture(model=model, tags={"via": "remote"})
        def summarize(text: str, *, temperature: float = 0.2) -> str:
            return f"summary of {text}"

        with pm.acting_for("ann@example.com"):
            out = summarize("the article")
        with pm.record(model=model, input="prompt two for ann@example.com") as rec:
            rec.set_output("second output")
        pm.flush()
        v = pm.verify(out)
        assert v.record.model.name == name and v.record.actor.user_id
        assert v.record.actor.user_id.startswith("hmac-sha256:")  # developer: sanitized view
        assert v.checks[0].name == "output_hash" and all(c.ok for c in v.checks)
        page = pm.find(model=name)
        assert {r.record_id for r in page.records} == {v.record_id, rec.record_id}
        shown = pm.get(rec.record_id or "").input.snapshot or ""
        assert shown.startswith("prompt two for [EMAIL") and "ann@" not in shown
        assert pm.find(output="second output").records[0].record_id == rec.record_id
        with pytest.raises(provmark.VerificationError) as err:
            pm.verify(out + " (edited)")
        assert err.value.check == "output_hash"
        with pytest.raises(provmark.ConfigError):
            pm.bundle(v.record_id)  # holds a snapshot and a user id: auditors only
        with pytest.raises(provmark.NotFoundError):
            pm.get("01a2b3c4-0000-7000-8000-000000000000")
    auditor = provmark.open(server.url, token=server.token("auditor"), journal_dir=tmp_path / "a")
    with auditor:
        assert auditor.get(rec.record_id or "").input.snapshot == "prompt two for ann@example.com"
        bundle = auditor.bundle(v.record_id)
        assert provmark.verify_bundle(bundle).record_id == v.record_id


def test_server_down_journal_then_replay_without_duplicates(
    server: Server, dev_token: str, tmp_path: Path
) -> None:
    name = f"acme/outage-{uuid.uuid4().hex[:6]}"
    before = tree_size(server, dev_token)
    pm = remote(server, dev_token, tmp_path / "j", batch_size=7)
    model = provmark.Model(name)
    try:
        with pm.record(model=model, input="before") as rec:
            rec.set_output("before the outage")
        pm.flush(10)
        server.stop(kill=True)
        for i in range(40):
            with pm.record(model=model, input=f"during {i}") as rec:
                rec.set_output(f"during the outage {i}")
        with pytest.raises(provmark.CaptureError, match="not stored"):
            pm.flush(timeout=1.5)
        assert pm.journal.count == 40 and pm.pending == 40
        lines = pm.journal.path.read_text().splitlines()
        assert len(lines) == 40 and not any("during" in line for line in lines)  # sealed
        assert {d["input"]["snapshot"] for d in pm.journal.read()} == {
            f"during {i}" for i in range(40)
        }
        server.start()
        pm.flush(timeout=30)
        assert pm.journal.count == 0
    finally:
        pm.close()
    assert count(server, dev_token, name) == 41
    assert tree_size(server, dev_token) == before + 41


SECRET_PROMPT = (
    "Refund ann.lee@example.com on card 4111 1111 1111 1111, "
    "then call the API with sk-proj-Zq8vT3xY7wK2mN9pL4rB6cD1fG5hJ0sA"
)


def test_offline_journal_holds_no_prompt_in_clear_and_is_private(
    server: Server, dev_token: str, tmp_path: Path
) -> None:
    """Issue 18: the journal of a client whose server is away is sealed and 0600; the
    records it kept reach the server exactly as captured (auditors see the original)."""
    name = f"acme/private-journal-{uuid.uuid4().hex[:6]}"
    journal = tmp_path / "remote" / "j"
    server.stop()
    pm = remote(server, dev_token, journal, close_timeout=0.5, home=tmp_path)
    try:
        with pm.record(model=provmark.Model(name), input=SECRET_PROMPT) as rec:
            rec.set_output("refund done")
        with pm.record(model=provmark.Model(name), input={"prompt": SECRET_PROMPT}) as rec2:
            rec2.set_output("refund done twice")
        with pytest.raises(provmark.CaptureError, match="not stored"):
            pm.flush(timeout=1.0)
        assert pm.journal.count == 2
    finally:
        pm.close()
    files = list(journal.glob("*.jsonl"))
    assert len(files) == 1
    data = files[0].read_bytes()
    secrets = ("ann.lee", "example.com", "4111", "1111 1111", "sk-proj-", "Zq8vT3xY7wK2", "Refund")
    for secret in secrets:
        assert secret.encode() not in data, secret
    lines = data.splitlines()
    assert len(lines) == 2 and all(line.startswith(b"s1:") for line in lines)
    assert files[0].stat().st_mode & 0o777 == 0o600
    assert journal.stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "keys" / "remote-journal.secret").stat().st_mode & 0o777 == 0o600
    server.start()
    with remote(server, dev_token, journal, home=tmp_path) as again:
        again.flush(30)
        assert again.journal.count == 0
    with remote(server, server.token("auditor"), tmp_path / "a") as auditor:
        assert auditor.get(rec.record_id or "").input.snapshot == SECRET_PROMPT
        snapshot = auditor.get(rec2.record_id or "").input.snapshot or ""
        assert SECRET_PROMPT in snapshot
    with remote(server, dev_token, tmp_path / "d") as developer:
        shown = developer.get(rec.record_id or "").input.snapshot or ""
        assert "ann.lee@example.com" not in shown and "4111 1111 1111 1111" not in shown


def test_journal_seals_lines_left_in_clear_by_an_older_version(tmp_path: Path) -> None:
    old = tmp_path / "0.jsonl"
    old.write_bytes(b'{"record_id": "a", "input": {"snapshot": "left by 0.x"}}\n{"record_id')
    old.chmod(0o644)
    key = bytes(range(32))
    journal = Journal(tmp_path, key)
    try:
        assert not old.exists() and journal.path.stat().st_mode & 0o777 == 0o600
        journal.append([{"record_id": "b", "input": {"snapshot": "sealed now"}}])
        data = journal.path.read_bytes()
        assert b"left by" not in data and b"sealed now" not in data
        assert [d["record_id"] for d in journal.read()] == ["a", "b"]  # the torn line dropped
        assert journal.count == 2
    finally:
        journal.close()
    with pytest.raises(provmark.ProvmarkError, match="does not open"):
        Journal(tmp_path, bytes(32))
    again = Journal(tmp_path, key)  # nothing was lost to the wrong key
    assert again.count == 2
    again.close()


def test_closed_while_down_is_replayed_by_the_next_open(
    server: Server, dev_token: str, tmp_path: Path
) -> None:
    name = f"acme/reopen-{uuid.uuid4().hex[:6]}"
    journal = tmp_path / "j"
    server.stop()
    pm = remote(server, dev_token, journal, close_timeout=1.0)
    for i in range(12):
        with pm.record(model=provmark.Model(name), input="x") as rec:
            rec.set_output(f"kept {i}")
    pm.close()
    files = [p for p in journal.glob("*.jsonl") if p.read_text()]
    assert len(files) == 1 and len(files[0].read_text().splitlines()) == 12
    server.start()
    before = tree_size(server, dev_token)
    with remote(server, dev_token, journal) as again:
        again.flush(30)
    assert count(server, dev_token, name) == 12
    assert tree_size(server, dev_token) == before + 12
    assert not [p for p in journal.glob("*.jsonl") if p.read_text()]


def test_resent_batches_are_not_duplicated(server: Server, dev_token: str, tmp_path: Path) -> None:
    records = [make_record(f"resend {i}", model={"name": "acme/resend"}) for i in range(30)]
    before = tree_size(server, dev_token)
    with remote(server, dev_token, tmp_path / "j") as pm:
        pm.ingest(records)
        pm.ingest(records[:10])  # a client retrying after a lost answer
    with remote(server, dev_token, tmp_path / "j2") as pm:
        pm.journal.append(records[10:20])  # as if a crashed process left them behind
        pm.flush(10)
    assert tree_size(server, dev_token) == before + 30


def test_large_batches_are_split_and_invalid_records_dropped(
    server: Server, dev_token: str, tmp_path: Path
) -> None:
    good = [make_record(f"split {i}", model={"name": "acme/split"}) for i in range(120)]
    bad = make_record("bad one", schema_version="99")
    before = tree_size(server, dev_token)
    with remote(server, dev_token, tmp_path / "j", batch_size=200) as pm:
        pm.ingest([*good[:60], bad, *good[60:]])
        assert [rid for rid, _ in pm.rejected] == [bad["record_id"]]
        assert "schema_version" in pm.rejected[0][1]
    assert tree_size(server, dev_token) == before + 120


def test_bad_token_keeps_records_and_flush_says_why(server: Server, tmp_path: Path) -> None:
    pm = remote(server, "pmk_bad_token", tmp_path / "j", close_timeout=0.5)
    try:
        pm.ingest([make_record("unauthorized")], wait=False)
        with pytest.raises(provmark.CaptureError, match="refused the token"):
            pm.flush(10)
        assert pm.journal.count == 1
    finally:
        pm.close()
    with pytest.raises(provmark.ConfigError):
        provmark.open(server.url, token="x", durable=True)


def test_ingest_token_cannot_read(server: Server, tmp_path: Path) -> None:
    with remote(server, server.token("ingest"), tmp_path / "j") as pm:
        pm.ingest([make_record("ingest only")])
        with pytest.raises(provmark.ConfigError, match="403"):
            pm.find(limit=1)


def test_journal_adopts_files_of_dead_processes(tmp_path: Path) -> None:
    first = Journal(tmp_path)
    first.append([{"record_id": "a"}, {"record_id": "b"}])
    second = Journal(tmp_path)  # the first still holds its lock: a new slot
    assert second.path != first.path and second.count == 0
    assert first._fh is not None
    first._fh.close()  # the first process dies without cleaning up
    with open(first.path, "ab") as fh:
        fh.write(b'{"record_id": "torn')  # and its last write was torn
    third = Journal(tmp_path)
    assert third.count == 2 and [d["record_id"] for d in third.read()] == ["a", "b"]
    third.clear()
    third.close()
    second.close()
    assert not list(tmp_path.glob("*.jsonl"))


def test_unreachable_server_reads_raise_store_error(tmp_path: Path) -> None:
    from server_harness import free_port

    pm = provmark.open(
        f"http://127.0.0.1:{free_port()}", token="t", journal_dir=tmp_path, close_timeout=0.2
    )
    try:
        with pytest.raises(provmark.StoreError):
            pm.public_keys()
    finally:
        pm.close()


def test_embedded_and_remote_are_one_client(
    server: Server, dev_token: str, tmp_path: Path, pm: provmark.Provmark
) -> None:
    """Code written against ProvenanceClient runs on either, with the same types back."""

    def summarize_and_prove(client: provmark.ProvenanceClient, text: str) -> tuple[str, object]:
        with client.record(model=provmark.Model("acme/one-client"), input=text) as rec:
            rec.set_output(summary := text[:12])
        verified = client.verify(summary)
        assert verified.record.model.name == "acme/one-client"
        return summary, client.latest_checkpoint()

    with remote(server, dev_token, tmp_path / "journal") as rm:
        for client in (pm, rm):
            assert isinstance(client, provmark.ProvenanceClient)
            _, checkpoint = summarize_and_prove(client, f"a text for {type(client).__name__}")
            assert isinstance(checkpoint, provmark.StoredCheckpoint) and checkpoint.size >= 1
