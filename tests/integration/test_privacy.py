"""Privacy end to end: redaction on capture, field encryption, crypto-shredding, role views.

Real SQLite files (and the real PostgreSQL server when it is reachable); nothing of
provmark is mocked. "No PII" is checked on raw bytes: the database file, its WAL, the
durable journal, developer views, bundles and log output.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import provmark
from provmark.crypto.keystore import EnvKeyStore
from provmark.errors import ConfigError, KeyStoreError, VerificationError
from provmark.privacy import AccessDenied, Status
from provmark.redaction import luhn_ok
from provmark.verification.audit import audit
from provmark.verify import Verified

MODEL = provmark.Model("acme/assistant", version="2")
FILLER = (
    "Please summarise the customer's request below in two sentences, keep a neutral tone, "
    "do not invent facts and list any follow-up actions with owners and due dates. "
)


def _card(rng: random.Random) -> str:
    body = "4" + "".join(rng.choice("0123456789") for _ in range(14))
    num = next(body + d for d in "0123456789" if luhn_ok(body + d))
    return " ".join(num[i : i + 4] for i in range(0, 16, 4))


def _iban(rng: random.Random) -> str:
    bban = "".join(rng.choice("0123456789") for _ in range(18))
    check = 98 - int(bban + "131400") % 97
    return f"DE{check:02d}{bban}"


def corpus(n: int = 24) -> tuple[list[str], list[str]]:
    """Prompts of about 2 KB full of PII, and every PII string (plus normalized forms)."""
    rng = random.Random(7)
    prompts, pii = [], []
    for i in range(n):
        email = f"{rng.choice(['jo', 'ana', 'li', 'sam'])}.{i}smith@example-{i}.org"
        phone = f"+44 20 7946 {1000 + i:04d}"
        card, iban = _card(rng), _iban(rng)
        ip4, ip6 = f"203.0.113.{10 + i}", f"2001:db8::{i + 1:x}:beef"
        key = "sk-live" + "".join(
            rng.choice("abcdefghijkmnopqrstuvwxyz0123456789") for _ in range(32)
        )
        pii += [email, phone, card, iban, ip4, ip6, key]
        pii += [card.replace(" ", ""), phone.replace(" ", "")[1:], iban[4:], key[8:]]
        body = (
            f"From {email} (call {phone}). Card {card}, refund to IBAN {iban}. "
            f"Logged in from {ip4} and {ip6}; their key is {key}. "
        )
        prompts.append((FILLER * 6)[: 2048 - len(body)] + body)
    return prompts, pii


def main(argv: list[str]) -> int:
    from provmark.cli import main as cli_main

    return cli_main(argv)


def record_json(r: Any) -> dict[str, Any]:
    return {"slug": r.slug, **r.model_dump(mode="json", exclude_none=True)}


def assert_clean(data: bytes | str, pii: list[str], where: str) -> None:
    raw = data if isinstance(data, bytes) else data.encode()
    found = [p for p in pii if p.encode() in raw]
    assert not found, f"{where} holds PII: {found[:5]}"


def files(db: Path) -> bytes:
    out = db.read_bytes()
    wal = db.with_name(db.name + "-wal")
    return out + (wal.read_bytes() if wal.exists() else b"")


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    return tmp_path / "p.db"


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


# ---------------------------------------------------------------- redaction + encryption


def test_pii_never_reaches_disk_developers_or_logs(
    db: Path, home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    prompts, pii = corpus()
    journal = db.with_name(db.name + ".journal")
    ids, journal_bytes = [], b""
    with provmark.open(
        db, home=home, durable=True, hash_user_ids=True, flush_interval=30, batch_size=10_000
    ) as pm:
        for i, prompt in enumerate(prompts):
            with pm.acting_for(f"user-{i % 4}"), pm.record(model=MODEL, input=prompt) as rec:
                rec.set_output(f"summary {i}")
            ids.append(rec.record_id or "")
        with pytest.raises(RuntimeError), pm.record(model=MODEL, input=prompts[0]) as rec:
            raise RuntimeError(f"upstream refused {pii[0]} from {pii[4]}")
        failed = rec.record_id or ""
        journal_bytes = journal.read_bytes()  # still waiting: only the journal has them
        assert journal_bytes.count(b"\n") == len(prompts) + 1
        messages = [{"role": "user", "content": f"my card is {pii[2]}"}]
        chat = pm.capture(model=MODEL, operation="chat")(lambda messages: "ok")
        chat(messages)
        pm.flush()

        dev = pm.view("developer", principal="dev-1")
        shown = [json.dumps(record_json(dev.get(rid))) for rid in [*ids, failed]]
        page = dev.find(limit=100)
        shown += [json.dumps(record_json(r)) for r in page.records]
        v = dev.verify("summary 3")
        shown += [json.dumps(v.to_json()), v.payload.decode(), json.dumps(record_json(v.record))]
        shown.append(json.dumps(dev.bundle(ids[0])))
        for i, text in enumerate(shown):
            assert_clean(text, pii, f"developer view {i}")
        assert dev.get(failed).error is not None
        assert "[EMAIL:" in (dev.get(failed).error.message or "")  # type: ignore[union-attr]

        auditor = pm.view("auditor", principal="carol", reason="case 7")
        for rid, prompt in zip(ids, prompts, strict=True):
            assert auditor.get(rid).input.snapshot == prompt, "auditor reads the exact original"
        structured = auditor.find(operation="chat").records[0]
        assert json.loads(structured.input.snapshot or "") == messages
        assert all(
            r.input.snapshot in prompts
            for r in auditor.find(limit=30).records
            if r.input.snapshot and r.operation != "chat"
        )
        assert_clean(files(db), pii, "database file + WAL (open)")
    assert_clean(journal_bytes, pii, "durable journal")
    assert_clean(files(db), pii, "database file + WAL (closed)")
    assert_clean(journal.read_bytes(), pii, "journal after close")
    assert_clean(caplog.text, pii, "log output")


def test_signed_record_holds_only_redacted_text_and_a_reference(db: Path, home: Path) -> None:
    with provmark.open(db, home=home) as pm:
        with pm.acting_for("alice"), pm.record(model=MODEL, input="mail jo@example.com") as rec:
            rec.set_output("done")
        r = pm.get(rec.record_id or "")
        stored = pm.store.get(r.record_id)
    assert r.input.snapshot is not None and r.input.snapshot.startswith("mail [EMAIL:")
    (ref,) = r.extra["$encrypted"]
    assert ref["$encrypted"] == "input.snapshot" and ref["hmac"].startswith("hmac-sha256:")
    assert stored is not None and b"jo@example.com" not in stored.payload


def test_options_turn_parts_off(tmp_path: Path) -> None:
    prompt = "call +44 20 7946 0958"
    cases: dict[str, dict[str, Any]] = {
        "off": {"redact": False},
        "no_encrypt": {"encrypt": False},
        "redact_only": {"redaction_policy": {"fields": {"input.snapshot": "redact"}}},
        "drop": {"redaction_policy": {"fields": {"input.snapshot": "drop"}}},
    }
    got = {}
    for name, options in cases.items():
        with provmark.open(tmp_path / f"{name}.db", home=tmp_path / "home", **options) as pm:
            with pm.record(model=MODEL, input=prompt) as rec:
                rec.set_output(name)
            got[name] = pm.get(rec.record_id or "")
    assert got["off"].input.snapshot == prompt and not got["off"].extra
    for name in ("no_encrypt", "redact_only"):
        assert (got[name].input.snapshot or "").startswith("call [PHONE:")
        assert "7946" not in (got[name].input.snapshot or "") and not got[name].extra
    assert got["drop"].input.snapshot is None and got["drop"].input.sha256
    with pytest.raises(ConfigError):
        provmark.open(tmp_path / "x.db", home=tmp_path / "home", redact=False, redactor=object())


def test_nested_encrypt_rule_on_structured_input(db: Path, home: Path) -> None:
    policy = {
        "fields": {
            "input.snapshot": "redact",
            "input.snapshot.messages.*.content": "encrypt",
            "input.snapshot.user": "hash",
        }
    }
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "I am jo@example.com"},
    ]
    with provmark.open(db, home=home, redaction_policy=policy) as pm:
        chat = pm.capture(model=MODEL, operation="chat")(lambda messages, user: "ok")
        chat(messages, "jo")
        rec = pm.find(operation="chat").records[0]
        stored = json.loads(rec.input.snapshot or "")
        assert stored["messages"][1]["content"]["$encrypted"] == "input.snapshot.messages.1.content"
        assert stored["user"].startswith("hmac-sha256:")
        assert [r["$encrypted"] for r in rec.extra["$encrypted"]] == [
            "input.snapshot.messages.0.content",
            "input.snapshot.messages.1.content",
        ]
        shown = pm.view("auditor", principal="carol").get(rec.record_id)
        assert json.loads(shown.input.snapshot or "")["messages"] == messages
    assert b"jo@example.com" not in files(db)


def test_ingested_records_are_stored_as_given(db: Path, home: Path) -> None:
    from provmark.record import new_record_id, now_utc

    rec = {
        "record_id": new_record_id(),
        "generated_at": now_utc(),
        "model": {"name": "acme/m"},
        "input": {"snapshot": "already redacted by the sender"},
        "output": {"sha256": "0" * 64},
    }
    with provmark.open(db, home=home) as pm:
        (rid,) = pm.ingest([rec])
        assert pm.get(rid).input.snapshot == "already redacted by the sender"


# ---------------------------------------------------------------- erasure


def _wrapped_keys(db: Path) -> dict[str, bytes]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT subject, wrapped FROM pm_subject_keys").fetchall()
    return {s: bytes(w) for s, w in rows if w is not None}


def test_erase_shreds_the_key_and_everything_still_verifies(db: Path, home: Path) -> None:
    with provmark.open(db, home=home) as pm:
        for user in ("alice", "bob"):
            with pm.acting_for(user), pm.record(model=MODEL, input=f"{user}@example.com") as rec:
                rec.set_output(f"answer for {user}")
        with pm.record(model=MODEL, input="tenant secret", tags={"tenant": "acme"}) as rec:
            rec.set_output("tenant answer")
        pm.flush()
        alice = pm.privacy.hash_subject("alice")  # type: ignore[union-attr]
        key_bytes = _wrapped_keys(db)[alice]
        assert key_bytes in files(db), "the wrapped key is on disk (file or WAL) before"

        result = pm.erase("alice", reason="GDPR request from alice@example.com")
        assert result.keys_shredded == 1 and not result.already_erased and result.scrubbed
        assert result.subject == alice and result.record_id
        assert key_bytes not in files(db), "the wrapped data key is gone from file and WAL"

        auditor = pm.view("auditor", principal="carol")
        a = auditor.find(actor="alice").records[0]
        assert a.extra["$encrypted"][0]["status"] == "erased"
        assert auditor.reveal(a.record_id)["input.snapshot"].status is Status.ERASED
        b = auditor.find(actor="bob").records[0]
        assert b.input.snapshot == "bob@example.com"
        assert pm.verify("answer for alice").record_id == a.record_id
        assert audit(pm).ok

        erasure = pm.get(result.record_id)
        assert erasure.operation == "erasure" and erasure.extra["keys_shredded"] == 1
        assert erasure.tags["subject"] == alice and "alice@" not in json.dumps(erasure.extra)
        receipt = json.dumps(
            {"erasure": {"subject": alice, "erased_at": result.erased_at, "keys_shredded": 1}},
            separators=(",", ":"),
            sort_keys=True,
        )
        assert pm.verify(receipt).record_id == result.record_id

        count = pm.store.count()
        again = pm.erase("alice")
        assert again.already_erased and again.keys_shredded == 0
        assert again.record_id == result.record_id and pm.store.count() == count

        tenant = pm.erase("acme")
        assert tenant.keys_shredded == 1
        t = auditor.find(tags={"tenant": "acme"}).records[0]
        assert t.extra["$encrypted"][0]["status"] == "erased"
        with pm.acting_for("alice"), pm.record(model=MODEL, input="back again") as rec:
            rec.set_output("new life")
        assert auditor.get(rec.record_id or "").input.snapshot == "back again"  # a new key
    assert main(["audit", "--db", str(db), "--home", str(home)]) == 0
    assert main(["verify", "--text", "answer for alice", "--db", str(db), "--home", str(home)]) == 0


def test_erase_of_a_subject_with_no_data_is_recorded_once(db: Path, home: Path) -> None:
    with provmark.open(db, home=home) as pm:
        first = pm.erase("nobody")
        second = pm.erase("nobody")
    assert first.record_id and not first.already_erased and first.keys_shredded == 0
    assert second.already_erased and second.record_id == first.record_id


def test_legal_hold_blocks_erasure_until_released(db: Path, home: Path) -> None:
    from provmark.governance import place_hold, release_hold

    rid = _capture(db, home)
    with provmark.open(db, home=home) as pm:
        hold = place_hold(pm, subject="alice", reason="case 9")
        with pytest.raises(ConfigError, match="legal hold"):
            pm.erase("alice")
        assert pm.view("auditor", principal="c").get(rid).input.snapshot == "secret prompt"
        release_hold(pm, hold.hold_id, reason="case closed")
        assert pm.erase("alice").keys_shredded == 1


# ---------------------------------------------------------------- bad input


def _capture(db: Path, home: Path, *, user: str = "alice", text: str = "secret prompt") -> str:
    with provmark.open(db, home=home) as pm:
        with pm.acting_for(user), pm.record(model=MODEL, input=text) as rec:
            rec.set_output(f"out {text}")
        return rec.record_id or ""


def test_wrong_master_key_is_a_clear_error_with_nothing_partial(tmp_path: Path) -> None:
    db, home = tmp_path / "p.db", tmp_path / "home"
    rid = _capture(db, home)
    _capture(db, home, user="bob", text="second prompt")
    other = tmp_path / "other"
    shutil.copytree(home, other)
    (other / "keys" / "master.secret").write_bytes(base64.b64encode(os.urandom(32)) + b"\n")
    with provmark.open(db, home=other) as pm:
        auditor = pm.view("auditor", principal="carol")
        with pytest.raises(KeyStoreError, match="master key"):
            auditor.get(rid)
        with pytest.raises(KeyStoreError, match="master key"):
            auditor.find()
        assert pm.view("developer", principal="d").get(rid).input.snapshot == "secret prompt"
        with pm.acting_for("alice"), pm.record(model=MODEL, input="more") as rec:
            rec.set_output("still writes")  # a new data key under this master: no stall
        assert auditor.get(rec.record_id or "").input.snapshot == "more"
    pem = (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    b64 = base64.b64encode(os.urandom(32)).decode()
    env = EnvKeyStore({"PROVMARK_SIGNING_KEY": pem, "PROVMARK_SECRET_REDACTION": b64})
    with pytest.raises(ConfigError, match="PROVMARK_SECRET_MASTER"):
        provmark.open(tmp_path / "env.db", keystore=env)


def test_durable_capture_fails_closed_when_the_vault_cannot_write(db: Path, home: Path) -> None:
    from provmark.errors import CaptureError

    with provmark.open(db, home=home, durable=True) as pm:
        with pm.record(model=MODEL, input="fine") as rec:
            rec.set_output("first")
        with sqlite3.connect(db) as conn:
            conn.execute("ALTER TABLE pm_ciphertexts RENAME TO gone")
        with pytest.raises(CaptureError, match="encryption failed"):  # noqa: SIM117
            with pm.record(model=MODEL, input="mail jo@example.com") as rec:
                rec.set_output("second")
        pm.flush()
        assert pm.store.count() == 1
        with sqlite3.connect(db) as conn:
            conn.execute("ALTER TABLE gone RENAME TO pm_ciphertexts")
    assert b"jo@example.com" not in files(db) + db.with_name(db.name + ".journal").read_bytes()


def test_altered_key_row_is_rejected(db: Path, home: Path) -> None:
    rid = _capture(db, home)
    with sqlite3.connect(db) as conn:
        (wrapped,) = conn.execute("SELECT wrapped FROM pm_subject_keys").fetchone()
        bad = bytearray(wrapped)
        bad[-1] ^= 1
        conn.execute("UPDATE pm_subject_keys SET wrapped = ?", (bytes(bad),))
    with provmark.open(db, home=home) as pm, pytest.raises(KeyStoreError, match="altered"):
        pm.view("auditor", principal="carol").get(rid)


def test_moved_ciphertext_is_rejected(db: Path, home: Path) -> None:
    policy = {"fields": {"input.snapshot": "encrypt", "error.message": "encrypt"}}
    with provmark.open(db, home=home, redaction_policy=policy) as pm:
        ids = []
        for text in ("first secret", "second secret"):
            with pm.acting_for("alice"), pm.record(model=MODEL, input=text) as rec:
                rec.set_output(text)
            ids.append(rec.record_id or "")
        with (
            pytest.raises(KeyError),
            pm.acting_for("alice"),
            pm.record(model=MODEL, input="x") as rec,
        ):
            raise KeyError("boom")
        failing = rec.record_id or ""
        pm.flush()
        auditor = pm.view("auditor", principal="carol")
        assert auditor.get(failing).error.message == "'boom'"  # type: ignore[union-attr]
        with sqlite3.connect(db) as conn:
            (second,) = conn.execute(
                "SELECT ciphertext FROM pm_ciphertexts WHERE record_id = ?", (ids[1],)
            ).fetchone()
            conn.execute(
                "UPDATE pm_ciphertexts SET ciphertext = ? WHERE record_id = ?", (second, ids[0])
            )
            (message,) = conn.execute(
                "SELECT ciphertext FROM pm_ciphertexts WHERE record_id = ? AND path = ?",
                (failing, "error.message"),
            ).fetchone()
            conn.execute(
                "UPDATE pm_ciphertexts SET ciphertext = ? WHERE record_id = ? AND path = ?",
                (message, failing, "input.snapshot"),
            )
        for rid in (ids[0], failing):
            with pytest.raises(VerificationError) as err:
                auditor.get(rid)
            assert err.value.check == "ciphertext"
        assert auditor.get(ids[1]).input.snapshot == "second secret"


# ---------------------------------------------------------------- roles and the access log


def test_roles_are_enforced(db: Path, home: Path) -> None:
    rid = _capture(db, home)
    with provmark.open(db, home=home) as pm:
        ingest = pm.view("ingest", principal="svc")
        for call in (
            lambda: ingest.get(rid),
            lambda: ingest.find(),
            lambda: ingest.verify("out secret prompt"),
            lambda: ingest.bundle(rid),
            lambda: ingest.reveal(rid),
            lambda: ingest.access_log(),
        ):
            with pytest.raises(AccessDenied) as err:
                call()
            assert isinstance(err.value, PermissionError) and err.value.role == "ingest"
        from provmark.record import new_record_id, now_utc

        rec = {"record_id": new_record_id(), "generated_at": now_utc(), "model": {"name": "m"}}
        assert ingest.ingest([rec]) == [rec["record_id"]]

        dev = pm.view("developer", principal="dev")
        for call in (
            lambda: dev.reveal(rid),
            lambda: dev.access_log(),
            lambda: dev.erase("alice"),
            lambda: dev.keys(),
            lambda: dev.ingest([]),
            lambda: dev.bundle(rid),  # its signed bytes hold the raw user id
            lambda: dev.rotate_keys(),
        ):
            with pytest.raises(AccessDenied):
                call()
        assert dev.get(rid).actor.user_id == pm.hash_user_id("alice")
        assert dev.get(rid).input.snapshot == "secret prompt"
        assert isinstance(dev.verify("out secret prompt"), Verified)
        assert dev.bundle(rec["record_id"])["record"]["record_id"] == rec["record_id"]

        admin = pm.view("admin", principal="root")
        assert admin.get(rid).actor.user_id == pm.hash_user_id("alice")
        keys = admin.keys("alice")
        assert len(keys) == 1 and keys[0].fields == 1 and keys[0].erased_at is None
        assert not any(isinstance(v, bytes) for v in keys[0].to_json().values())
        with pytest.raises(AccessDenied):
            admin.reveal(rid)

        auditor = pm.view("auditor", principal="carol", reason="ticket 1")
        for call in (lambda: auditor.erase("alice"), lambda: auditor.ingest([])):
            with pytest.raises(AccessDenied):
                call()
        with pytest.raises(ConfigError):
            pm.view("root", principal="x")
        with pytest.raises(ConfigError):
            pm.view("auditor", principal="")


def test_every_decrypted_read_is_logged(db: Path, home: Path) -> None:
    ids = [_capture(db, home, text=f"prompt {i}") for i in range(3)]
    with provmark.open(db, home=home) as pm:
        auditor = pm.view("auditor", principal="carol", reason="audit for jo@example.com")
        auditor.get(ids[0])
        auditor.find(limit=10)
        auditor.verify("out prompt 1")
        pm.view("developer", principal="dev").get(ids[0])  # not a decrypted read
        log = pm.view("admin", principal="root").access_log(limit=100)
        assert len(log) == 1 + 3 + 1
        assert {e.principal for e in log} == {"carol"} and {e.action for e in log} == {"decrypt"}
        assert [e.record_id for e in log].count(ids[0]) == 2
        assert all(e.reason and "jo@example.com" not in e.reason for e in log)
        assert auditor.access_log(record_id=ids[1])[0].fields == ("input.snapshot",)
        assert auditor.verify_access_log() == 5
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE pm_access_log SET principal = 'mallory' WHERE seq = 2")
    with provmark.open(db, home=home) as pm, pytest.raises(VerificationError) as err:
        pm.view("admin", principal="root").verify_access_log()
    assert err.value.check == "access_log"


def test_cli_erase_access_log_and_view(
    db: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rid = _capture(db, home, text="mail jo@example.com")
    base = ["--db", str(db), "--home", str(home), "--principal", "carol"]
    assert main(["view", rid, "--role", "developer", "--json", *base]) == 0
    dev = json.loads(capsys.readouterr().out)
    assert "jo@example.com" not in json.dumps(dev) and dev["actor"]["user_id"].startswith("hmac")
    assert main(["view", rid, "--role", "auditor", "--reason", "t-1", "--json", *base]) == 0
    assert json.loads(capsys.readouterr().out)["input"]["snapshot"] == "mail jo@example.com"
    assert main(["access-log", "--json", "--verify", *base]) == 0
    (entry,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert entry["record_id"] == rid and entry["reason"] == "t-1"
    assert main(["erase", "--subject", "alice", "--reason", "gdpr", "--json", *base]) == 0
    assert json.loads(capsys.readouterr().out)["keys_shredded"] == 1
    assert main(["erase", "--subject", "alice", *base]) == 0
    assert "already erased" in capsys.readouterr().out
    assert main(["view", rid, "--role", "auditor", "--json", *base]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["extra"]["$encrypted"][0]["status"] == "erased"


# ---------------------------------------------------------------- crash ordering

WRITER = textwrap.dedent(
    """
    import sys, provmark
    db, home = sys.argv[1], sys.argv[2]
    pm = provmark.open(db, home=home, durable=True, flush_interval=30, batch_size=10_000)
    for i in range(100_000):
        text = f"call +44 20 7946 {i:04d}"
        with pm.acting_for(f"user-{i % 3}"), pm.record(model="m", input=text) as rec:
            rec.set_output(f"output {i}")
        print(rec.record_id, i, flush=True)
    """
)


def test_kill_9_never_leaves_a_record_without_its_ciphertext(db: Path, home: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db), str(home)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    acked: dict[str, int] = {}
    for line in proc.stdout:
        rid, i = line.split()
        acked[rid] = int(i)
        if len(acked) == 40:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with provmark.open(db, home=home, durable=True) as pm:
        auditor = pm.view("auditor", principal="carol")
        for rid, i in acked.items():
            assert auditor.get(rid).input.snapshot == f"call +44 20 7946 {i:04d}"
        assert audit(pm).ok
    assert b"7946 0001" not in files(db)


# ---------------------------------------------------------------- PostgreSQL


@pytest.mark.postgres
def test_postgres_vault_end_to_end(pg_database: str, tmp_path: Path) -> None:
    psycopg = pytest.importorskip("psycopg")
    pytest.importorskip("provmark.store.postgres", reason="PostgresStore not available")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    url = f"{pg_database}?options=-csearch_path%3D{schema}"
    home = tmp_path / "home"
    with provmark.open(url, home=home) as pm:
        from provmark.privacy import PostgresVault

        assert isinstance(pm.privacy.vault, PostgresVault)  # type: ignore[union-attr]
        for user in ("alice", "bob"):
            with pm.acting_for(user), pm.record(model=MODEL, input=f"{user}@example.com") as rec:
                rec.set_output(f"pg answer {user}")
        auditor = pm.view("auditor", principal="carol", reason="pg")
        assert auditor.find(actor="bob").records[0].input.snapshot == "bob@example.com"
        result = pm.erase("alice", reason="gdpr")
        assert result.keys_shredded == 1 and result.scrubbed
        assert auditor.find(actor="alice").records[0].extra["$encrypted"][0]["status"] == "erased"
        assert pm.erase("alice").already_erased
        assert pm.verify("pg answer alice") and audit(pm).ok
        assert auditor.verify_access_log() == 2
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT wrapped IS NULL FROM pm_subject_keys").fetchall()
        assert sorted(r[0] for r in rows) == [False, True]
        tables = conn.execute("SELECT convert_from(payload, 'UTF8') FROM records").fetchall()
        assert not any("alice@example.com" in t[0] for t in tables)


def test_pii_in_params_is_redacted_sealed_and_shredded(db: Path, home: Path) -> None:
    """A keyword argument is signed too: its text is redacted like the prompt, the original
    sealed under its path for auditors and shredded with the subject's key."""
    email, phone = "jane.doe@example.org", "+44 20 7946 0123"
    with provmark.open(db, home=home) as pm:

        @pm.capture(model=MODEL)
        def answer(prompt: str, *, user_email: str = "", tools: Any = None, t: float = 0.2) -> str:
            return "ok " + prompt

        with pm.acting_for("alice"):
            answer("hello", user_email=email, tools=[{"note": f"call {phone}"}], t=0.5)
        pm.flush()
        assert_clean(files(db), [email, phone, phone.replace(" ", "")], "database")
        assert isinstance(pm.verify("ok hello"), Verified)
        dev = pm.view("developer", principal="dan").find(limit=1).records[0]
        assert email not in json.dumps(dev.params) and dev.params["t"] == 0.5
        auditor = pm.view("auditor", principal="carol", reason="case 9")
        full = auditor.find(limit=1).records[0]
        assert full.params == {"user_email": email, "tools": [{"note": f"call {phone}"}], "t": 0.5}
        revealed = auditor.reveal(full.record_id)
        assert revealed["params.user_email"].value == email
        assert revealed["params.tools[0].note"].status is Status.DECRYPTED
        pm.erase("alice")
        assert auditor.reveal(full.record_id)["params.user_email"].status is Status.ERASED
        assert isinstance(pm.verify("ok hello"), Verified), "erasure never breaks verification"


def test_params_policy_keep_leaves_them_as_given(db: Path, home: Path) -> None:
    policy = {"fields": {"input.snapshot": "encrypt", "params": "keep"}}
    with provmark.open(db, home=home, redaction_policy=policy) as pm:
        gen = pm.capture(model=MODEL)(lambda p, *, to="": "ok")
        gen("hi", to="bob@example.org")
        pm.flush()
        assert b"bob@example.org" in files(db)


@pytest.mark.parametrize("action", ["mask", "hash", "drop"])
def test_params_policy_mask_hash_drop(db: Path, home: Path, action: str) -> None:
    policy = {"fields": {"input.snapshot": "encrypt", "params": action}}
    with provmark.open(db, home=home, redaction_policy=policy) as pm:
        gen = pm.capture(model=MODEL)(lambda p, *, to="", n=3: "ok")
        gen("hi", to="bob@example.org", n=4)
        pm.flush()
        assert b"bob@example.org" not in files(db)
        params = pm.view("auditor", principal="carol", reason="t").find(limit=1).records[0].params
        if action == "drop":
            assert params == {}
        else:
            assert params["n"] == 4 and params["to"] != "bob@example.org"
            assert params["to"].startswith("hmac-sha256:" if action == "hash" else "[")
