"""Data at rest (issue 18, item 6): webhook signing secrets sealed in ``server.db`` under
the master key; store files, journals, key files and the server state created 0600."""

from __future__ import annotations

import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import provmark
from provmark.crypto.fieldenc import LocalMasterKey
from provmark.errors import KeyStoreError
from provmark.server.state import StateDB
from provmark.server.webhooks import WebhookStore, master_key_for


def raw_secrets(path: Path) -> list[str]:
    con = sqlite3.connect(path)
    try:
        return [r[0] for r in con.execute("SELECT secret FROM pmsrv_webhooks")]
    finally:
        con.close()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_webhook_secrets_are_sealed_under_the_master_key(tmp_path: Path) -> None:
    state = tmp_path / "server.db"
    master = LocalMasterKey(b"m" * 32)
    db = StateDB(str(state))
    try:
        sub = WebhookStore(db, master).add("https://hooks.example.test/a", [])
        assert sub.secret.startswith("whsec_")
        stored = raw_secrets(state)
        assert stored and all(s.startswith("sealed:v1:local:") for s in stored)
        assert sub.secret not in stored[0] and "whsec_" not in stored[0]
        sealed = WebhookStore(db, master).get(sub.sub_id).secret
        assert WebhookStore(db, master).secret_of(sub.sub_id, sealed) == sub.secret
        with pytest.raises(KeyStoreError):
            WebhookStore(db, LocalMasterKey(b"x" * 32)).secret_of(sub.sub_id, sealed)
    finally:
        db.close()


def test_secrets_written_in_clear_are_sealed_on_open(tmp_path: Path) -> None:
    state = tmp_path / "server.db"
    db = StateDB(str(state))
    try:
        old = WebhookStore(db).add("https://hooks.example.test/old", [])  # an older provmark
        assert raw_secrets(state) == [old.secret]
        master = LocalMasterKey(b"m" * 32)
        hooks = WebhookStore(db, master)  # seals what it finds in clear
        assert raw_secrets(state)[0].startswith("sealed:v1:")
        assert hooks.secret_of(old.sub_id, raw_secrets(state)[0]) == old.secret
    finally:
        db.close()


def test_server_and_cli_share_the_vaults_master_key(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with provmark.open(tmp_path / "p.db", home=home) as pm:
        master = master_key_for(pm)
        assert master is not None and pm.privacy is not None and pm.privacy.vault is not None
        assert master.key_id == pm.privacy.vault.master_key_id
    state = tmp_path / "server.db"
    out = subprocess.run(
        [
            *(sys.executable, "-m", "provmark.cli", "webhooks", "add"),
            *("https://hooks.example.test/c", "--state", str(state), "--home", str(home)),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    secret = out.stdout.strip().splitlines()[-1]
    assert secret.startswith("whsec_")
    assert secret not in state.read_bytes().decode("latin-1")
    assert not any(secret in s for s in raw_secrets(state))
    db = StateDB(str(state))
    try:  # what the server reads with its vault's master key
        hooks = WebhookStore(db, master)
        (sub,) = hooks.subscriptions()
        assert hooks.secret_of(sub.sub_id, sub.secret) == secret
    finally:
        db.close()
    assert mode(state) == 0o600


def test_files_are_created_owner_only(tmp_path: Path) -> None:
    db, home = tmp_path / "p.db", tmp_path / "home"
    with provmark.open(db, home=home, durable=True, flush_interval=30) as pm:
        with pm.record(model="acme/m", input="card 4111 1111 1111 1111") as rec:
            rec.set_output("x")
        journal = tmp_path / "p.db.journal"
        assert journal.stat().st_size > 0 and mode(journal) == 0o600
        pm.flush()
        assert mode(Path(f"{db}-wal")) == 0o600
    assert mode(db) == 0o600
    for key in (home / "keys").glob("*.pem"):
        assert mode(key) == 0o600, key
    for secret in (home / "keys").glob("*.secret"):
        assert mode(secret) == 0o600, secret
    for note in (home / "checkpoints").glob("*"):
        assert mode(note) == 0o600, note
