"""The CLI as a user runs it: in-process through main() and as a real subprocess."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import provmark
from provmark.cli import main
from provmark.cli.demo import build_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | str]:
    folder = tmp_path_factory.mktemp("demo")
    return build_demo(folder, n=4)


DEMO_SIZE = 4 * 3 + 3  # three records a request, a failed one, the cover image, the erasure


def args(demo: dict[str, Path | str], *rest: str) -> list[str]:
    folder = Path(demo["original"]).parent
    return [*rest, "--db", str(folder / "provmark.db"), "--home", str(folder / "home")]


def run(*argv: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provmark.cli", *argv],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_verify_original_and_edited_as_subprocess(demo: dict[str, Path | str]) -> None:
    ok = run(*args(demo, "verify", str(demo["original"])))
    assert ok.returncode == 0, ok.stderr
    assert "VERIFIED" in ok.stdout and "inclusion_proof" in ok.stdout
    bad = run(*args(demo, "verify", str(demo["edited"])))
    assert bad.returncode == 1
    assert bad.stderr.strip().count("\n") == 0, "one clear line on stderr"
    assert "output_hash" in bad.stderr


def test_verify_stdin_text_and_json(
    demo: dict[str, Path | str], capsys: pytest.CaptureFixture[str]
) -> None:
    text = Path(demo["original"]).read_bytes()
    assert run(*args(demo, "verify", "-"), stdin=text).returncode == 0
    assert main(args(demo, "verify", "--text", text.decode(), "--json")) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["verified"] and out["record_id"] == demo["record_id"]


def test_offline_bundle(demo: dict[str, Path | str], tmp_path: Path) -> None:
    bundle = tmp_path / "b.provmark.json"
    assert main(args(demo, "bundle", str(demo["record_id"]), "-o", str(bundle))) == 0
    # offline: no --db at all, run from an empty folder
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "provmark.cli",
            "verify",
            str(demo["original"]),
            "--bundle",
            str(bundle),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "provmark.db").exists()
    assert run("verify", str(demo["edited"]), "--bundle", str(bundle)).returncode == 1
    broken = tmp_path / "broken.provmark.json"
    broken.write_text(bundle.read_text()[:200])
    assert run("verify", str(demo["original"]), "--bundle", str(broken)).returncode == 1


def test_bundle_with_pinned_keyset(demo: dict[str, Path | str], tmp_path: Path) -> None:
    keyset = tmp_path / "keyset.json"
    assert main(args(demo, "keys", "export", "-o", str(keyset))) == 0
    bundle = tmp_path / "b.provmark.json"
    main(args(demo, "bundle", str(demo["record_id"]), "-o", str(bundle)))
    log_key = json.loads(keyset.read_text())["log_key"]
    r = run(
        "verify",
        str(demo["original"]),
        "--bundle",
        str(bundle),
        "--keyset",
        str(keyset),
        "--log-key",
        log_key,
    )
    assert r.returncode == 0 and "pinned" in r.stdout


def test_log_json_lines(demo: dict[str, Path | str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args(demo, "log", "--json", "--limit", "5")) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 5
    assert all("record_id" in json.loads(line) for line in lines)
    assert (
        main(
            args(
                demo,
                "log",
                "--model",
                "provmark/markov-demo",
                "--since",
                "1h",
                "--tag",
                "step=summary",
            )
        )
        == 0
    )
    assert "markov-demo" in capsys.readouterr().out


def test_show(demo: dict[str, Path | str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args(demo, "show", str(demo["record_id"]))) == 0
    out = capsys.readouterr().out
    assert "provmark/markov-demo" in out and "signature" in out
    assert main(args(demo, "show", "pm-20000101-abcdef")) == 2


def test_usage_errors_exit_2(demo: dict[str, Path | str], tmp_path: Path) -> None:
    assert run("verify").returncode == 2
    assert run(*args(demo, "verify", str(tmp_path / "missing.txt"))).returncode == 2
    assert run("frobnicate").returncode == 2
    assert run(*args(demo, "log", "--since", "whenever")).returncode == 2
    bad_db = tmp_path / "bad.db"
    bad_db.write_text("not a database")
    r = run("log", "--db", str(bad_db), "--home", str(tmp_path))
    assert r.returncode == 2 and "not a provmark database" in r.stderr
    missing = run("log", "--db", str(tmp_path / "nowhere.db"), "--home", str(tmp_path))
    assert missing.returncode == 2 and "no provmark database" in missing.stderr
    assert not (tmp_path / "nowhere.db").exists(), "a read never creates a database"


def test_checkpoint_proof_keys(
    demo: dict[str, Path | str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args(demo, "checkpoint", "--json", "--consistency-from", "3")) == 0
    cp = json.loads(capsys.readouterr().out)
    assert cp["size"] == DEMO_SIZE and len(cp["consistency"]["proof"]) > 0
    assert main(args(demo, "proof", str(demo["record_id"]))) == 0
    assert json.loads(capsys.readouterr().out)["tree_size"] == DEMO_SIZE
    assert main(args(demo, "keys", "list")) == 0
    assert "log verifier key" in capsys.readouterr().out


def test_rotate_then_audit_then_tamper(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = build_demo(tmp_path, n=6)
    a = args(out)
    assert main([*a[:0], "keys", "rotate", *a]) == 0
    assert main(["verify", str(out["original"]), *a]) == 0
    assert main(["audit", *a]) == 0
    con = sqlite3.connect(tmp_path / "provmark.db")
    con.execute("UPDATE records SET payload = replace(payload, 'markov', 'mark0v') WHERE idx = 2")
    con.commit()
    con.close()
    capsys.readouterr()
    assert main(["audit", "--json", *a]) == 1
    findings = json.loads(capsys.readouterr().out)["findings"]
    assert {f["kind"] for f in findings} >= {"altered", "bad_signature"}


def test_demo_command(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "provmark.cli", "demo", "--dir", str(tmp_path / "d"), "-n", "8"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("\nVERIFIED") == 2 and "NOT VERIFIED" in r.stdout


def test_output_cut_short_by_head_is_quiet(tmp_path: Path) -> None:
    """`provmark log | head -c 10`: no "Broken pipe" error when the reader goes away."""
    db, home = tmp_path / "provmark.db", tmp_path / "home"
    with provmark.open(db, home=home) as pm:
        for i in range(300):  # far more than a pipe holds, so the writer is cut off
            with pm.record(model=provmark.Model("acme/m"), input=f"prompt {i}") as rec:
                rec.set_output(f"output {i}")
    cmd = f"{sys.executable} -m provmark.cli log --db {db} --home {home} --limit 300 --json"
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", cmd + " | head -c 10"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout and "Broken pipe" not in done.stderr, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 141, done.stderr


def test_help_lists_each_command_once() -> None:
    text = run("--help").stdout
    assert "keys-revoke" not in text and "keys" in text
    assert "revoke" in run("keys", "--help").stdout
    assert run("keys-revoke", "--help").returncode == 0  # the old spelling still works
