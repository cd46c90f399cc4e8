"""RFC 3161 timestamps of checkpoints against a real TSA: `openssl ts -reply` on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from trust_harness import LocalTsa, make_ca

import provmark
from provmark.cli import main
from provmark.errors import ConfigError, VerificationError
from provmark.timestamp import (
    load_tsa_trust,
    request_timestamp,
    timestamp_checkpoint,
    verify_stored_timestamps,
    verify_timestamp,
)
from provmark.witness import TrustArchive
from provmark.witness.archive import StoredTimestamp

MODEL = provmark.Model("acme/painter", version="2")


def add(pm: provmark.Provmark, *outputs: str) -> None:
    for text in outputs:
        with pm.record(model=MODEL, input="a prompt") as rec:
            rec.set_output(text)
    pm.flush()


@pytest.fixture
def tsa(tmp_path: Path) -> Iterator[LocalTsa]:
    with LocalTsa(tmp_path / "tsa") as server:
        yield server


def db_args(db: Path, home: Path) -> list[str]:
    return ["--db", str(db), "--home", str(home)]


def test_timestamp_add_verify_and_verify_records(
    pm: provmark.Provmark,
    db_path: Path,
    home: Path,
    tsa: LocalTsa,
    capsys: pytest.CaptureFixture[str],
) -> None:
    add(pm, "picture one", "picture two")
    ca = str(tsa.ca)
    args = db_args(db_path, home)
    assert main(["timestamp", "add", "--tsa", tsa.url, "--tsa-cert", ca, "--json", *args]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["size"] == 2 and out["verified"] and out["gen_time"].endswith("Z")
    assert tsa.requests == 1

    assert main(["timestamp", "verify", "--tsa-cert", ca, *args]) == 0
    assert "1 of 1 timestamps verified" in capsys.readouterr().out

    assert main(["verify", "--text", "picture one", "--tsa-cert", ca, "--json", *args]) == 0
    checks = {c["check"]: c["detail"] for c in json.loads(capsys.readouterr().out)["checks"]}
    assert "time-stamped by CN=provmark test TSA" in checks["timestamp"]

    # A record newer than every stamped checkpoint has no timestamp yet.
    add(pm, "picture three")
    assert main(["verify", "--text", "picture three", "--tsa-cert", ca, *args]) == 1
    assert "timestamp: no checkpoint that includes leaf 2" in capsys.readouterr().err
    assert main(["timestamp", "add", "--tsa", tsa.url, *args]) == 0  # not verified when stored
    assert "not verified" in capsys.readouterr().out
    assert main(["verify", "--text", "picture three", "--tsa-cert", ca, *args]) == 0


def test_tokens_are_checked_against_the_data_and_the_pinned_root(
    tmp_path: Path, pm: provmark.Provmark, tsa: LocalTsa
) -> None:
    add(pm, "an image")
    trust = load_tsa_trust([tsa.ca])
    stamp, info = timestamp_checkpoint(pm.log, tsa.url, trust=trust)
    assert info is not None and info.tsa == "CN=provmark test TSA"
    body = stamp.body.encode()
    assert verify_timestamp(stamp.response, body, trust).gen_time == info.gen_time

    # a token for other data
    with pytest.raises(VerificationError, match="timestamp token is for other data"):
        verify_timestamp(stamp.response, body.replace(b"\n1\n", b"\n2\n"), trust)
    # another TSA root
    make_ca(tmp_path / "other", "someone else")
    with pytest.raises(VerificationError, match="token does not verify"):
        verify_timestamp(stamp.response, body, load_tsa_trust([tmp_path / "other" / "ca.pem"]))
    # bytes changed in the token: the signature no longer holds (or it does not parse)
    flipped = bytearray(stamp.response)
    flipped[-10] ^= 0x01
    with pytest.raises(VerificationError, match="timestamp"):
        verify_timestamp(bytes(flipped), body, trust)
    with pytest.raises(VerificationError, match="not an RFC 3161 time-stamp response"):
        verify_timestamp(b"\x30\x03\x02\x01\x00", body, trust)

    # A token stored for a checkpoint this log never signed fails `timestamp verify`.
    with TrustArchive.for_log(pm.log) as archive:
        results = verify_stored_timestamps(archive, trust, origin=pm.store.origin)
        assert [isinstance(r, VerificationError) for _, r in results] == [False]
        other = stamp.body.replace("\n1\n", "\n7\n")
        response = request_timestamp(tsa.url, other.encode(), trust=trust)
        archive.add_timestamp(StoredTimestamp(1, other, "elsewhere", response, "-"))
        results = verify_stored_timestamps(archive, trust, origin=pm.store.origin)
    errors = [str(r) for _, r in results if isinstance(r, VerificationError)]
    assert len(results) == 2 and len(errors) == 1 and "covers size 7" in errors[0]


def test_tsa_failures_and_bad_options(
    tmp_path: Path,
    pm: provmark.Provmark,
    db_path: Path,
    home: Path,
    tsa: LocalTsa,
    capsys: pytest.CaptureFixture[str],
) -> None:
    add(pm, "x")
    args = db_args(db_path, home)
    tsa.fail(503)
    assert main(["timestamp", "add", "--tsa", tsa.url, *args]) == 1
    assert "answered HTTP 503" in capsys.readouterr().err
    tsa.fail(0)
    assert main(["timestamp", "add", "--tsa", "ftp://x", *args]) == 2
    leaf_only = tmp_path / "leaf.pem"
    leaf_only.write_bytes((tsa.folder / "tsa.pem").read_bytes())
    with pytest.raises(ConfigError, match="root CA"):
        load_tsa_trust([leaf_only])
    assert main(["verify", "--text", "x", "--tsa-cert", str(tmp_path / "none.pem"), *args]) == 2
    # nothing stored yet: `timestamp verify` fails rather than report success
    assert main(["timestamp", "verify", "--tsa-cert", str(tsa.ca), *args]) == 1
