"""Key compromise: `provmark keys-revoke KEY --since TIME` and what then verifies.

A thief holding the record key can sign new records and backdate them; only outside
evidence (a witness cosignature or a TSA token on a checkpoint that includes the record,
dated before the compromise) keeps an older record valid.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from trust_harness import LocalTsa

import provmark
from provmark.cli import main
from provmark.crypto.revocation import RevocationList, judge, parse_since
from provmark.errors import ConfigError, VerificationError
from provmark.record import format_time, new_record_id, now_utc, parse_time
from provmark.witness import Witness, WitnessServer

MODEL = provmark.Model("acme/writer", version="7")


def add(pm: provmark.Provmark, *outputs: str) -> None:
    for text in outputs:
        with pm.record(model=MODEL, input="prompt") as rec:
            rec.set_output(text)
    pm.flush()


def backdated(text: str, generated_at: str) -> dict[str, Any]:
    """A record a thief signs now but dates before the compromise."""
    data = text.encode()
    return {
        "record_id": new_record_id(int(parse_time(generated_at).timestamp() * 1e9)),
        "schema_version": "1",
        "generated_at": generated_at,
        "operation": "chat",
        "model": {"name": "acme/writer", "version": "7"},
        "output": {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)},
    }


def db_args(db: Path, home: Path) -> list[str]:
    return ["--db", str(db), "--home", str(home)]


@pytest.fixture
def witness_file(tmp_path: Path, pm: provmark.Provmark) -> Iterator[Path]:
    w = Witness.create(tmp_path / "w", "witness.test/r")
    w.add_log(pm.log_verifier.key_string())
    with WitnessServer(w).start() as server:
        path = tmp_path / "witnesses.txt"
        path.write_text(f"{w.key.vkey()} {server.url}\n")
        yield path
    w.close()


def _wait_past_second() -> str:
    """A compromise time strictly after every cosignature made so far (whole seconds)."""
    time.sleep(1.05)
    return now_utc()


def test_revoked_key_after_compromise_and_backdating(
    pm: provmark.Provmark,
    db_path: Path,
    home: Path,
    witness_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = db_args(db_path, home)
    add(pm, "made and witnessed before")
    assert main(["witness", "submit", "--witnesses", str(witness_file), *args]) == 0
    add(pm, "made before, never witnessed before")
    since = _wait_past_second()
    stolen = pm.signer.key_id

    # The thief signs with the stolen key: one record dated honestly, one backdated.
    add(pm, "made after the compromise")
    early = format_time(parse_time(since) - timedelta(milliseconds=300))
    pm.ingest([backdated("backdated by the thief", early)])
    assert main(["witness", "submit", "--witnesses", str(witness_file), *args]) == 0
    capsys.readouterr()

    assert main(["keys-revoke", stolen, "--since", since, "--reason", "laptop stolen", *args]) == 0
    out = capsys.readouterr().out
    assert f"revoked {stolen} since" in out and "new key" in out  # it was current: rotated
    assert main(["keys-revoke", "--list", "--json", *args]) == 0
    listed = json.loads(capsys.readouterr().out)["revocations"]
    assert listed[0]["key_id"] == stolen and listed[0]["reason"] == "laptop stolen"

    w = ["--witnesses", str(witness_file), "--min", "1"]

    def verify(text: str, *extra: str) -> tuple[int, str]:
        code = main(["verify", "--text", text, *extra, *args])
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    # Revocations apply to every verify, with no option given.
    code, msg = verify("made after the compromise")
    assert code == 1 and "key_revoked" in msg and "after the compromise" in msg
    assert "laptop stolen" in msg
    code, msg = verify("made and witnessed before")
    assert code == 1 and "no checkpoint witnessed or time-stamped before the compromise" in msg
    # With the witnesses pinned, the record witnessed before the compromise stays valid.
    code, msg = verify("made and witnessed before", *w)
    assert code == 0 and "revocation" in msg and "logged before" in msg
    # Made before but only witnessed after: it could be backdated, so it fails.
    code, msg = verify("made before, never witnessed before", *w)
    assert code == 1 and "may be backdated" in msg
    code, msg = verify("backdated by the thief", *w)
    assert code == 1 and "may be backdated" in msg
    code, msg = verify("made after the compromise", *w)
    assert code == 1 and "after the compromise" in msg

    # The new key signs on (in processes opened after the rotation); its records verify.
    pm.close()
    with provmark.open(db_path, home=home, flush_interval=0.01) as fresh:
        assert fresh.signer.key_id != stolen
        add(fresh, "made with the new key")
    assert verify("made with the new key")[0] == 0

    # Bad input: unknown key, a log key, an unreadable time: each a usage error naming it.
    assert main(["keys-revoke", "0" * 16, "--since", "now", *args]) == 2
    assert "no such key" in capsys.readouterr().err
    assert main(["keys-revoke", pm.log.log_signer.key_id, "--since", "now", *args]) == 2
    assert "log key" in capsys.readouterr().err
    assert main(["keys-revoke", stolen, "--since", "yesterday", *args]) == 2
    assert "--since: 'yesterday'" in capsys.readouterr().err


def test_timestamp_before_compromise_keeps_records_valid(
    tmp_path: Path,
    pm: provmark.Provmark,
    db_path: Path,
    home: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = db_args(db_path, home)
    with LocalTsa(tmp_path / "tsa") as tsa:
        add(pm, "stamped before")
        assert main(["timestamp", "add", "--tsa", tsa.url, *args]) == 0
        since = _wait_past_second()
        add(pm, "after")
        assert main(["timestamp", "add", "--tsa", tsa.url, *args]) == 0
        assert main(["keys-revoke", pm.signer.key_id, "--since", since, *args]) == 0
        capsys.readouterr()
        ca = ["--tsa-cert", str(tsa.ca)]
        assert main(["verify", "--text", "stamped before", *ca, *args]) == 0
        assert "time-stamped by CN=provmark test TSA" in capsys.readouterr().out
        assert main(["verify", "--text", "after", *ca, *args]) == 1
        assert "after the compromise" in capsys.readouterr().err


def test_revocation_list_rules(tmp_path: Path) -> None:
    revs = RevocationList(tmp_path / "keys" / "revocations.json")
    assert len(revs) == 0
    rev = revs.revoke("ab" * 8, "2026-01-02T00:00:00Z", "lost")
    # moving a revocation later would make records valid again: it never moves later
    again = revs.revoke("ab" * 8, "2026-06-01T00:00:00Z")
    assert again.since == rev.since and again.reason == "lost"
    reread = RevocationList(tmp_path / "keys" / "revocations.json")
    earlier = reread.revoke("ab" * 8, "2025-12-01T00:00:00Z")
    assert earlier.since.startswith("2025-12-01")
    assert parse_since("2d") < now_utc()
    with pytest.raises(ConfigError, match="since: 'soon'") as bad:
        parse_since("soon")
    assert bad.value.field == "since"  # the library names its parameter; the CLI its flag
    r = RevocationList(tmp_path / "keys" / "revocations.json").get("ab" * 8)
    assert r is not None
    assert "logged before" in judge(r, "2025-11-01T00:00:00Z", ("2025-11-02T00:00:00.000000Z", "w"))
    with pytest.raises(VerificationError, match="after the compromise"):
        judge(r, "2025-12-02T00:00:00Z", ("2025-11-02T00:00:00.000000Z", "w"))
    with pytest.raises(VerificationError, match="may be backdated"):
        judge(r, "2025-11-01T00:00:00Z", ("2025-12-05T00:00:00.000000Z", "w"))
    bad = tmp_path / "bad.json"
    bad.write_text('{"revocations": [{"since": "2025-01-01T00:00:00Z"}]}')
    with pytest.raises(ConfigError, match="lacks 'key_id'"):
        RevocationList(bad)
