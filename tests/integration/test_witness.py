"""Witnesses as users run them: two `provmark witness serve` processes, a log, a fork.

The split-view attack: the log operator copies its database at some size and grows the
copy differently (same origin, same keys), to show one history to some and another to
others. Each witness cosigns only trees consistent with what it cosigned before, so the
fork gathers no cosignatures, and `provmark verify --witnesses FILE --min 2` refuses it.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from trust_harness import WitnessProcess, cli, start_witness

import provmark
from provmark.cli import main
from provmark.errors import ConfigError, VerificationError
from provmark.log.merkle import consistency_proof
from provmark.log.note import parse_note
from provmark.witness import (
    CosignerKey,
    TrustArchive,
    Witness,
    WitnessClient,
    WitnessRefusal,
    WitnessServer,
    add_cosignatures,
    parse_witnesses,
    require_cosignatures,
    witness_checkpoint,
)

MODEL = provmark.Model("acme/writer", version="1")


def add(pm: provmark.Provmark, *outputs: str) -> None:
    for text in outputs:
        with pm.record(model=MODEL, input=f"prompt for {text}") as rec:
            rec.set_output(text)
    pm.flush()


def db_args(db: Path, home: Path) -> list[str]:
    return ["--db", str(db), "--home", str(home)]


@pytest.fixture
def witnesses(tmp_path: Path, pm: provmark.Provmark) -> Iterator[list[WitnessProcess]]:
    log_key = pm.log_verifier.key_string()
    procs: list[WitnessProcess] = []
    try:
        for n in (1, 2):
            procs.append(start_witness(tmp_path / f"w{n}", f"witness.test/w{n}", log_key))
        yield procs
    finally:
        for p in procs:
            p.stop()


@pytest.fixture
def witness_file(tmp_path: Path, witnesses: list[WitnessProcess]) -> Path:
    path = tmp_path / "witnesses.txt"
    path.write_text("# two independent witnesses\n" + "".join(w.line() + "\n" for w in witnesses))
    return path


def test_two_witnesses_cosign_and_verify_requires_k_of_n(
    pm: provmark.Provmark,
    db_path: Path,
    home: Path,
    witness_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    add(pm, "first answer", "second answer", "third answer")
    done = cli("witness", "submit", "--witnesses", str(witness_file), *db_args(db_path, home))
    assert done.stdout.count("cosigned") == 2, done.stdout

    capsys.readouterr()
    argv = ["verify", "--text", "second answer", "--witnesses", str(witness_file), "--min", "2"]
    assert main([*argv, *db_args(db_path, home), "--json"]) == 0
    checks = {c["check"]: c["detail"] for c in json.loads(capsys.readouterr().out)["checks"]}
    assert "2 of 2 witnesses" in checks["witness_cosignatures"]
    assert "witness.test/w1" in checks["witness_cosignatures"]

    # A newer record is not covered until the witnesses have seen a checkpoint with it.
    add(pm, "fourth answer")
    new = ["verify", "--text", "fourth answer", "--witnesses", str(witness_file), "--min", "2"]
    assert main([*new, *db_args(db_path, home)]) == 1
    assert "witness_cosignatures" in capsys.readouterr().err
    # The log grows; each witness checks a consistency proof from the size it cosigned.
    done = cli("witness", "submit", "--witnesses", str(witness_file), *db_args(db_path, home))
    assert "checkpoint of size 4" in done.stdout and done.stdout.count("cosigned") == 2
    assert main([*new, *db_args(db_path, home)]) == 0

    # A verifier who already trusts a newer (unwitnessed) checkpoint: the witnessed tree
    # must be a prefix of it.
    add(pm, "fifth answer")
    latest = pm.latest_checkpoint()
    assert latest is not None
    kept = home.parent / "latest.note"
    kept.write_text(latest.note)
    capsys.readouterr()
    assert main([*new, "--trusted-checkpoint", str(kept), *db_args(db_path, home)]) == 0
    assert "tree of size 4 is a prefix of 5" in capsys.readouterr().out

    # Each witness kept its own state, in its own folder.
    for w in ("w1", "w2"):
        status = json.loads(cli("witness", "status", str(home.parent / w), "--json").stdout)
        assert status["logs"][0]["size"] == 4 and status["logs"][0]["refusals"] == 0


def _copy_db(src: Path, dst: Path) -> None:
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)


def test_forked_log_is_refused_by_witnesses_and_detected_by_verifiers(
    tmp_path: Path,
    pm: provmark.Provmark,
    db_path: Path,
    home: Path,
    witnesses: list[WitnessProcess],
    witness_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    add(pm, "shared 1", "shared 2", "shared 3", "shared 4")
    cli("witness", "submit", "--witnesses", str(witness_file), *db_args(db_path, home))

    # The operator forks: a copy of the database at size 4, same origin, same keys.
    fork_db = tmp_path / "fork.db"
    _copy_db(db_path, fork_db)
    add(pm, "honest 5", "honest 6")
    cli("witness", "submit", "--witnesses", str(witness_file), *db_args(db_path, home))
    honest_note = pm.latest_checkpoint()
    assert honest_note is not None and honest_note.size == 6

    with provmark.open(fork_db, home=home, flush_interval=0.01) as fork:
        assert fork.store.origin == pm.store.origin
        add(fork, "forged 5", "forged 6")
        fork_at_6 = fork.latest_checkpoint()
        add(fork, "forged 7", "forged 8")
        assert fork_at_6 is not None and fork_at_6.size == 6

        # 1. Both witnesses refuse the fork: its tree is not consistent with size 6.
        done = cli(
            "witness",
            "submit",
            "--witnesses",
            str(witness_file),
            *db_args(fork_db, home),
            check=False,
        )
        assert done.returncode == 1, done.stdout + done.stderr
        assert done.stdout.count("REFUSED") == 2 and "422" in done.stdout
        assert "not consistent with size 6" in done.stdout

        # Same size, other root: refused too (409), whatever old size is claimed.
        client = WitnessClient(witnesses[0].url)
        with pytest.raises(WitnessRefusal) as refused:
            client.add_checkpoint(6, [], fork_at_6.note)
        assert refused.value.status == 409
        with pytest.raises(WitnessRefusal) as refused:  # an older view: rolled back
            client.add_checkpoint(4, consistency_proof(4, 6, fork.store), fork_at_6.note)
        assert refused.value.status == 409 and refused.value.size == 6
        client.close()

        # Cosignature lines copied from the honest checkpoint do not fit the forged one.
        with TrustArchive.for_log(pm.log) as archive:
            honest = archive.checkpoint(6)
        assert honest is not None
        grafted = add_cosignatures(fork_at_6.note, parse_note(honest.note)[1][1:])
        keys = [w.key for w in parse_witnesses(witness_file.read_text())]
        with pytest.raises(VerificationError, match=r"invalid cosignature by witness\.test/w"):
            require_cosignatures(grafted, keys, 2)

    # Each witness kept the signed, inconsistent checkpoints as evidence.
    for w in witnesses:
        status = json.loads(cli("witness", "status", str(w.folder), "--json").stdout)
        assert status["logs"][0]["size"] == 6 and status["logs"][0]["refusals"] >= 1

    # 2. Verifiers: one whose home has seen the honest log (it remembers the checkpoint
    # of 6) refuses the fork ...
    assert main(["verify", "--text", "forged 8", *db_args(fork_db, home)]) == 1
    assert "fork" in capsys.readouterr().err
    # ... one who never saw it verifies the fork on the log's signature alone (the attack)
    fork_args = ["--db", str(fork_db), "--home", str(tmp_path / "fresh-home")]
    assert main(["verify", "--text", "forged 8", *fork_args]) == 0
    capsys.readouterr()
    # ... but not with witnesses required ...
    w_args = ["--witnesses", str(witness_file), "--min", "2"]
    assert main(["verify", "--text", "forged 8", *w_args, *fork_args]) == 1
    assert "witness_cosignatures" in capsys.readouterr().err
    # ... and a verifier who kept the witnessed checkpoint sees the fork is inconsistent.
    kept = tmp_path / "witnessed.note"
    kept.write_text(honest.note)
    assert (
        main(["verify", "--text", "forged 8", "--trusted-checkpoint", str(kept), *fork_args]) == 1
    )
    assert "consistency" in capsys.readouterr().err
    # The honest log still verifies with both witnesses.
    assert main(["verify", "--text", "honest 6", *w_args, *db_args(db_path, home)]) == 0


def test_witnessed_offline_bundle(
    tmp_path: Path,
    pm: provmark.Provmark,
    db_path: Path,
    home: Path,
    witness_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    add(pm, "bundled answer", "another")
    cli("witness", "submit", "--witnesses", str(witness_file), *db_args(db_path, home))
    add(
        pm, "after witnessing"
    )  # the latest checkpoint is not witnessed: the bundle must not use it
    record_id = pm.find(limit=10, order="asc").records[0].record_id
    out = tmp_path / "b.provmark.json"
    cli(
        "witness",
        "bundle",
        record_id,
        "--witnesses",
        str(witness_file),
        "-o",
        str(out),
        *db_args(db_path, home),
    )
    bundle = json.loads(out.read_text())
    assert bundle["log"]["tree_size"] == 2

    w_args = ["--witnesses", str(witness_file), "--min", "2"]
    assert main(["verify", "--text", "bundled answer", "--bundle", str(out), *w_args]) == 0
    assert "witness_cosignatures" in capsys.readouterr().out

    # A malformed cosignature: the witness's line cut short.
    body, sigs = parse_note(bundle["log"]["checkpoint"])
    short = sigs[1].line().split(" ")
    raw = base64.b64decode(short[-1])[:40]
    short[-1] = base64.b64encode(raw).decode() + "\n"
    bundle["log"]["checkpoint"] = body + "\n" + sigs[0].line() + " ".join(short) + sigs[2].line()
    bad = tmp_path / "bad.provmark.json"
    bad.write_text(json.dumps(bundle))
    assert main(["verify", "--text", "bundled answer", "--bundle", str(bad), *w_args]) == 1
    assert "malformed cosignature" in capsys.readouterr().err

    # An unknown witness key: listed keys must be the ones that signed.
    stranger = tmp_path / "stranger"
    Witness.create(stranger, "witness.test/w1").close()  # same name, other key
    other = tmp_path / "other-witnesses.txt"
    other.write_text(cli("witness", "vkey", str(stranger)).stdout)
    one = ["--witnesses", str(other), "--min", "1"]
    assert main(["verify", "--text", "bundled answer", "--bundle", str(out), *one]) == 1
    err = capsys.readouterr().err
    assert "0 of the required 1" in err and "witness.test/w1+" in err
    # More required than listed is a usage error.
    assert (
        main(
            [
                "verify",
                "--text",
                "bundled answer",
                "--bundle",
                str(out),
                "--witnesses",
                str(witness_file),
                "--min",
                "3",
            ]
        )
        == 2
    )


# ---------------------------------------------------------------- the witness alone


@pytest.fixture
def served(tmp_path: Path, pm: provmark.Provmark) -> Iterator[tuple[Witness, WitnessServer]]:
    w = Witness.create(tmp_path / "wit", "witness.test/solo")
    w.add_log(pm.log_verifier.key_string())
    with WitnessServer(w).start() as server:
        yield w, server
    w.close()


def test_witness_refuses_bad_input_with_the_protocol_status(
    tmp_path: Path, pm: provmark.Provmark, served: tuple[Witness, WitnessServer]
) -> None:
    witness, server = served
    client = WitnessClient(server.url)
    add(pm, "a", "b", "c")
    cp3 = pm.latest_checkpoint()
    assert cp3 is not None
    line = client.add_checkpoint(0, [], cp3.note)
    assert require_cosignatures(cp3.note + line, [witness.key], 1)[0].name == "witness.test/solo"

    add(pm, "d", "e")
    cp5 = pm.latest_checkpoint()
    assert cp5 is not None

    def refused(old: int, proof: list[bytes], note: str) -> WitnessRefusal:
        with pytest.raises(WitnessRefusal) as info:
            client.add_checkpoint(old, proof, note)
        return info.value

    # old size is not the latest cosigned size: 409 with the size
    r = refused(0, [], cp5.note)
    assert (r.status, r.size) == (409, 3)
    # an older checkpoint than the one cosigned
    with provmark.open(tmp_path / "other.db", home=tmp_path / "h2") as other:
        add(other, "x")
        foreign = other.latest_checkpoint()
        assert foreign is not None
    assert refused(0, [], foreign.note).status == 404  # unknown origin
    # a consistency proof that does not verify: 422
    good = consistency_proof(3, 5, pm.store)
    bad = [bytes(32), *good[1:]]
    r = refused(3, bad, cp5.note)
    assert r.status == 422 and "not consistent" in r.reason
    # old size larger than the checkpoint: 400
    assert refused(9, [], cp5.note).status == 400
    # a signature by another key under the log's name: 403
    forged = cp5.note.replace(
        cp5.note.split("\n")[-2].split(" ")[-1], base64.b64encode(bytes(68)).decode()
    )
    assert refused(3, good, forged).status == 403
    # the right proof is accepted, and the state moved on
    assert client.add_checkpoint(3, good, cp5.note).startswith("\u2014 witness.test/solo ")
    state = witness.state(pm.store.origin)
    assert state is not None and state.size == 5
    client.close()


def test_malformed_request_bodies(served: tuple[Witness, WitnessServer]) -> None:
    import http.client

    _, server = served
    host, port = server.url.removeprefix("http://").split(":")
    for body, status in [
        (b"old x\n\nnote", 400),
        (b"old 01\n\nnote", 400),
        (b"old 0\nnot-base64!\n\nx\n", 400),
        (b"old 0\n" + b"AAAA\n" * 64 + b"\nx\n", 400),
        (b"old 0\n\nnot a note", 400),
        (b"\xff\xfe", 400),
    ]:
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        conn.request("POST", "/add-checkpoint", body=body)
        resp = conn.getresponse()
        assert resp.status == status, (body[:20], resp.status, resp.read())
        conn.close()


def test_log_side_library_api(pm: provmark.Provmark, served: tuple[Witness, WitnessServer]) -> None:
    witness, server = served
    add(pm, "lib one", "lib two")
    endpoints = parse_witnesses(f"{witness.key.vkey()} {server.url}\n")
    report = witness_checkpoint(pm.log, endpoints)
    assert [c.name for c in report.cosigned] == ["witness.test/solo"] and not report.refused
    add(pm, "lib three")
    report = witness_checkpoint(pm.log, endpoints)
    assert report.size == 3 and report.cosigned


def test_witness_keys_and_files_bad_input(tmp_path: Path) -> None:
    w = Witness.create(tmp_path / "w", "witness.test/k")
    vkey = w.key.vkey()
    w.close()
    assert CosignerKey.parse(vkey) == CosignerKey.parse(vkey)
    name, kid, key = vkey.split("+", 2)
    with pytest.raises(ConfigError, match="key id does not match"):
        CosignerKey.parse(f"{name}+00000000+{key}")
    with pytest.raises(ConfigError, match="algorithm 1 is not 4"):
        CosignerKey.parse(f"{name}+{kid}+" + base64.b64encode(b"\x01" + bytes(32)).decode())
    with pytest.raises(ConfigError, match=r"witnesses\.txt:2: URL"):
        parse_witnesses(f"# witnesses\n{vkey} ftp://x\n", "witnesses.txt")
    with pytest.raises(ConfigError, match="listed twice"):
        parse_witnesses(f"{vkey}\n{vkey}\n")
    with pytest.raises(ConfigError, match="no witness keys"):
        parse_witnesses("# nothing\n")
    with pytest.raises(ConfigError, match="already holds a witness"):
        Witness.create(tmp_path / "w", "witness.test/k")
