"""One verifier, one verdict on every surface.

* a forged C2PA image (provmark's assertions copied onto other pixels, signed by someone
  else) fails in the library, the CLI (plain, ``--fuzzy``, ``c2pa-read --check-log``),
  the server and the web UI's upload, naming the untrusted signer;
* after ``keys revoke`` the library, the CLI, the server, the web UI and an offline bundle
  agree, on SQLite and PostgreSQL;
* the differential test: the same (and mutated) evidence gives the same verdict and the
  same failed check on every surface;
* ingest refuses a record that could never verify (``generated_at`` outside the window of
  the key that would sign it).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from server_harness import start_server

import provmark
from provmark.bundle import bundle_report
from provmark.cli import main
from provmark.crypto.revocation import RevocationList
from provmark.errors import InvalidBatch, VerificationError
from provmark.export.c2pa import mark
from provmark.export.c2pa_certs import make_dev_cert, write_dev_cert
from provmark.record import format_time, new_record_id, now_utc, parse_time
from provmark.store.base import StoredRecord

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
sys.path.insert(0, str(GOLDEN))
import make_golden as g  # noqa: E402

MODEL = provmark.Model("acme/writer", version="7", provider="acme")
Verdict = tuple[bool, str | None]  # (verified, failed check)


def add_text(pm: provmark.Provmark, text: str) -> str:
    with pm.record(model=MODEL, input="prompt") as rec:
        rec.set_output(text)
    pm.flush()
    return rec.record_id or ""


def add_image(pm: provmark.Provmark, data: bytes) -> StoredRecord:
    (rid,) = pm.ingest(
        [
            {
                "record_id": new_record_id(),
                "generated_at": now_utc(),
                "operation": "image_generation",
                "model": {"name": "acme/painter", "version": "2.0", "provider": "acme"},
                "output": {"sha256": g.sha(data), "media_type": "image/png", "size": len(data)},
            }
        ]
    )
    stored = pm.store.get(rid)
    assert stored is not None
    return stored


def cli_json(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


# ---------------------------------------------------------------- C2PA never vouches alone


def test_forged_c2pa_manifest_fails_on_every_surface(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "site"
    folder.mkdir()
    db, home = folder / "provmark.db", folder / "home"
    ours = make_dev_cert()
    mallory = make_dev_cert(organization="mallory inc", common_name="mallory signer")
    (tmp_path / "ours-ca.pem").write_bytes(ours.ca_pem)
    (tmp_path / "mallory-ca.pem").write_bytes(mallory.ca_pem)
    real, other = g.png(), g.png(8, 8, bytes(range(192)))
    (tmp_path / "real.png").write_bytes(real)
    (tmp_path / "other.png").write_bytes(other)
    marked, forged = tmp_path / "marked.png", tmp_path / "forged.png"
    with provmark.open(db, home=home, flush_interval=0.01) as pm:
        stored = add_image(pm, real)
        mark(tmp_path / "real.png", marked, stored, ours.chain_pem, ours.key_pem)
        # the attack: provmark's record link and disclosure, on other pixels, signed by mallory
        mark(
            tmp_path / "other.png",
            forged,
            stored,
            mallory.chain_pem,
            mallory.key_pem,
            check_output=False,
        )

        ok = pm.verify(marked)  # its bytes minus the manifest are the recorded output
        names = [c.name for c in ok.checks]
        assert names[:3] == ["c2pa_manifest", "c2pa_record", "c2pa_binding"]
        assert "hard binding" in ok.checks[2].detail and "output_hash" in names
        with pytest.raises(VerificationError) as info:
            pm.verify(forged)
        assert info.value.check == "c2pa_binding" and "mallory signer" in info.value.detail
        report = pm.report(forged)
        assert not report.verified
        assert {c.name: c.result for c in report.checks}["record_signature"] == "not_run"
        # a trusted signer vouches; the anchor is what the verifier configures
        assert pm.verify(forged, c2pa_trust=str(tmp_path / "mallory-ca.pem")).record_id == (
            stored.record_id
        )

    args = ["--db", str(db), "--home", str(home)]
    assert main(["verify", str(marked), *args]) == 0
    capsys.readouterr()
    assert main(["verify", str(forged), *args]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("NOT VERIFIED")
    assert "FAIL c2pa_binding" in captured.out and "mallory signer" in captured.out
    assert "--  record_signature" in captured.out  # the same block of checks, the rest not run
    assert "c2pa_binding" in captured.err
    code, answer = cli_json("verify", str(forged), *args, capsys=capsys)
    assert code == 1 and answer["verified"] is False and answer["failed_check"] == "c2pa_binding"
    assert main(["verify", str(forged), "--trust", str(tmp_path / "ours-ca.pem"), *args]) == 1
    trusted = ["--trust", str(tmp_path / "mallory-ca.pem")]
    assert main(["verify", str(forged), *trusted, *args]) == 0
    # anchors from a key set (keys export --c2pa-trust), or the development CA when asked
    keyset = str(tmp_path / "keyset.json")
    assert main(["keys", "export", "-o", keyset, "--c2pa-trust", trusted[1], *args]) == 0
    assert main(["verify", str(forged), "--keyset", keyset, *args]) == 0
    write_dev_cert(mallory, home / "c2pa")
    assert main(["verify", str(forged), *args]) == 1  # a development CA is trusted only if asked
    assert main(["verify", str(forged), "--trust-dev-ca", *args]) == 0
    capsys.readouterr()
    assert main(["verify", str(forged), "--fuzzy", *args]) == 1
    assert "mallory signer" in capsys.readouterr().out
    assert main(["c2pa-read", str(forged), "--check-log", *args]) == 1
    assert "FAIL c2pa_binding" in capsys.readouterr().out
    assert main(["c2pa-read", str(marked), "--check-log", *args]) == 0
    capsys.readouterr()

    server = start_server(folder, db=str(db))
    try:
        with server.client(server.token("auditor")) as c:
            up = c.post("/v1/ui/c2pa", files={"file": ("forged.png", forged.read_bytes())}).json()
            good = c.post("/v1/ui/c2pa", files={"file": ("m.png", marked.read_bytes())}).json()
            by_hash = c.post("/v1/verify", files={"file": ("f.png", forged.read_bytes())}).json()
    finally:
        server.stop()
    assert up["found"] is True and up["verified"] is False
    assert up["failed_check"] == "c2pa_binding" and "mallory signer" in up["reason"]
    assert good["verified"] is True and good["record_id"] == stored.record_id
    assert by_hash["verified"] is False and by_hash["failed_check"] == "output_hash"
    server = start_server(folder, "--c2pa-trust", str(tmp_path / "mallory-ca.pem"), db=str(db))
    try:
        with server.client(server.token("auditor")) as c:
            up = c.post("/v1/ui/c2pa", files={"file": ("forged.png", forged.read_bytes())}).json()
    finally:
        server.stop()
    assert up["verified"] is True  # the server's operator chose to trust mallory's CA


# ---------------------------------------------------------------- revocation everywhere


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "site" / "provmark.db")
    url: str = request.getfixturevalue("pg_url")
    return url


def test_after_keys_revoke_every_surface_agrees(
    target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "site"
    folder.mkdir(exist_ok=True)
    home = folder / "home"
    args = ["--db", target, "--home", str(home)]
    with provmark.open(target, home=home, flush_interval=0.01) as pm:
        stolen = pm.signer.key_id
        revoked_id = add_text(pm, "signed with the stolen key")
        old_bundle = pm.bundle(revoked_id)
    since = format_time(parse_time(now_utc()) - timedelta(hours=1))
    assert main(["keys", "revoke", stolen, "--since", since, "--reason", "stolen", *args]) == 0
    assert main(["keys", "export", "-o", str(tmp_path / "keyset.json"), *args]) == 0
    capsys.readouterr()
    with provmark.open(target, home=home, flush_interval=0.01) as pm:
        fresh_id = add_text(pm, "signed with the new key")
        new_bundle = pm.bundle(revoked_id)
        assert "revocations" in new_bundle
        # library: verify, verify_digest, a role view
        with pytest.raises(VerificationError) as info:
            pm.verify("signed with the stolen key")
        assert info.value.check == "key_revoked" and "stolen" in info.value.detail
        sha = hashlib.sha256(b"signed with the stolen key").hexdigest()
        with pytest.raises(VerificationError, match="revoked"):
            pm.verify_digest(sha)
        with pytest.raises(VerificationError, match="revoked"):
            pm.view("auditor", principal="a", reason="t").verify("signed with the stolen key")
        assert pm.verify("signed with the new key").record_id == fresh_id
    (tmp_path / "new.provmark.json").write_text(json.dumps(new_bundle))
    (tmp_path / "old.provmark.json").write_text(json.dumps(old_bundle))
    keyset = ["--keyset", str(tmp_path / "keyset.json")]

    code, answer = cli_json("verify", "--text", "signed with the stolen key", *args, capsys=capsys)
    assert code == 1 and answer["failed_check"] == "key_revoked"
    offline = ["verify", "--text", "signed with the stolen key", "--bundle"]
    code, answer = cli_json(*offline, str(tmp_path / "new.provmark.json"), capsys=capsys)
    assert code == 1 and answer["failed_check"] == "key_revoked"  # no flag: the bundle says so
    # a bundle made before the revocation: the pinned key set's signed list applies
    code, answer = cli_json(*offline, str(tmp_path / "old.provmark.json"), *keyset, capsys=capsys)
    assert code == 1 and answer["failed_check"] == "key_revoked"
    with pytest.raises(VerificationError) as info:
        provmark.verify_bundle(new_bundle, content_sha256=sha)
    assert info.value.check == "key_revoked"
    assert main(["verify", "--text", "signed with the new key", *args]) == 0
    capsys.readouterr()

    server = start_server(folder, db=target)
    try:
        with server.client(server.token("auditor")) as c:
            answer = c.post("/v1/verify", json={"text": "signed with the stolen key"}).json()
            digest = c.post("/v1/verify", json={"sha256": sha}).json()
            checks = c.get(f"/v1/ui/records/{revoked_id}/checks").json()
            fresh = c.post("/v1/verify", json={"text": "signed with the new key"}).json()
    finally:
        server.stop()
    assert answer["verified"] is False and answer["failed_check"] == "key_revoked"
    assert digest["failed_check"] == "key_revoked" and checks["failed_check"] == "key_revoked"
    assert fresh["verified"] is True


# ---------------------------------------------------------------- differential


def _tamper(db: Path, record_id: str, column: str, change: Callable[[Any], Any]) -> None:
    with sqlite3.connect(db) as con:
        (value,) = con.execute(
            f"SELECT {column} FROM records WHERE record_id = ?", (record_id,)
        ).fetchone()
        con.execute(
            f"UPDATE records SET {column} = ? WHERE record_id = ?", (change(value), record_id)
        )


def test_every_surface_gives_the_same_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "site"
    db, home = folder / "provmark.db", folder / "home"
    folder.mkdir()
    args = ["--db", str(db), "--home", str(home)]
    pm = provmark.open(db, home=home, flush_interval=0.01)
    try:
        old_key = pm.signer.key_id
        ids = {"revoked": add_text(pm, "revoked")}
        RevocationList.for_keystore(pm.keystore).revoke(old_key, "2d", "compromised")
        pm.rotate_keys()
        for text in ("good", "payload", "signature"):
            ids[text] = add_text(pm, text)
        # mutated evidence, in the store itself
        _tamper(db, ids["payload"], "payload", lambda p: bytes(p).replace(b"acme/", b"evil/"))
        _tamper(
            db,
            ids["signature"],
            "signature",
            lambda s: json.dumps({**json.loads(s), "sig": "A" * 86 + "=="}),
        )
        cases = {  # content -> (record to bundle, expected verdict)
            "good": ("good", (True, None)),
            "good!": ("good", (False, "output_hash")),
            "payload": ("payload", (False, "record_signature")),
            "signature": ("signature", (False, "record_signature")),
            "revoked": ("revoked", (False, "key_revoked")),
        }
        bundles = {name: pm.bundle(ids[name]) for name in ("good", "payload", "signature")}
        bundles["revoked"] = pm.bundle(ids["revoked"])

        def of(report: Any) -> Verdict:
            return report.verified, report.failed.name if report.failed else None

        library = {text: of(pm.report(text)) for text in cases}
        offline = {
            text: of(
                bundle_report(
                    bundles[name], content_sha256=hashlib.sha256(text.encode()).hexdigest()
                )
            )
            for text, (name, _) in cases.items()
        }
        records = {
            name: of(pm.verification(None, record_id=ids[name]))
            for name in ("good", "payload", "signature", "revoked")
        }
    finally:
        pm.close()

    cli = {}
    for text in cases:
        code, answer = cli_json("verify", "--text", text, *args, capsys=capsys)
        cli[text] = (answer["verified"], answer.get("failed_check"))
        assert code == (0 if answer["verified"] else 1)

    server = start_server(folder, db=str(db))
    try:
        token = server.token("auditor")
        with server.client(token) as c:
            http = {}
            for text in cases:
                answer = c.post("/v1/verify", json={"text": text}).json()
                http[text] = (answer["verified"], answer.get("failed_check"))
            ui = {}
            for name in records:
                answer = c.get(f"/v1/ui/records/{ids[name]}/checks").json()
                ui[name] = (answer["verified"], answer.get("failed_check"))
        remote = {}
        with provmark.open(server.url, token=token) as client:
            for text in cases:
                try:
                    client.verify(text)
                    remote[text] = (True, None)
                except VerificationError as exc:
                    remote[text] = (False, exc.check)
    finally:
        server.stop()

    expected = {text: verdict for text, (_, verdict) in cases.items()}
    assert library == expected
    assert cli == expected
    assert http == expected
    assert remote == expected
    assert offline == expected
    assert ui == records == {name: expected[name] for name in records}


# ---------------------------------------------------------------- ingest


def test_ingest_refuses_records_that_could_never_verify(tmp_path: Path) -> None:
    folder = tmp_path / "site"
    folder.mkdir()
    with provmark.open(folder / "provmark.db", home=folder / "home") as pm:
        before = {
            "record_id": new_record_id(),
            "generated_at": "2020-01-01T00:00:00.000000Z",  # before any key of this store
            "model": {"name": "m"},
        }
        future = {**before, "record_id": new_record_id(), "generated_at": "2999-01-01T00:00:00Z"}
        fine = {**before, "record_id": new_record_id(), "generated_at": now_utc()}
        for batch, field in (([before], "[0].generated_at"), ([fine, future], "[1].generated_at")):
            with pytest.raises(InvalidBatch) as info:
                pm.ingest(batch)
            assert info.value.field == field and "validity window" in info.value.reason
        assert pm.store.count() == 0
    server = start_server(folder)
    try:
        with server.client(server.token("ingest")) as c:
            r = c.post("/v1/records", json=[before])
    finally:
        server.stop()
    assert r.status_code == 422 and r.json()["field"] == "[0].generated_at"


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_marked_images_verify_by_hard_binding(fmt: str, tmp_path: Path) -> None:
    """Removing the embedded manifest gives back exactly the recorded output."""
    import io

    from PIL import Image

    from provmark.verification.c2pa import strip_manifest

    buf = io.BytesIO()
    Image.new("RGB", (24, 16), (30, 90, 160)).save(buf, fmt)
    data = buf.getvalue()
    src, out = tmp_path / f"in.{fmt.lower()}", tmp_path / f"out.{fmt.lower()}"
    src.write_bytes(data)
    cert = make_dev_cert()
    with provmark.open(tmp_path / "p.db", home=tmp_path / "home", flush_interval=0.01) as pm:
        (rid,) = pm.ingest(
            [
                {
                    "record_id": new_record_id(),
                    "generated_at": now_utc(),
                    "operation": "image_generation",
                    "model": {"name": "acme/painter", "version": "2", "provider": "acme"},
                    "output": {"sha256": g.sha(data), "size": len(data)},
                }
            ]
        )
        stored = pm.store.get(rid)
        assert stored is not None
        mark(src, out, stored, cert.chain_pem, cert.key_pem)
        media = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}[fmt]
        assert out.read_bytes() != data and strip_manifest(out.read_bytes(), media) == data
        assert pm.verify(out).record_id == rid


def test_archived_records_honour_a_pinned_revocation_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("pyarrow")
    db, home = tmp_path / "provmark.db", tmp_path / "home"
    args = ["--db", str(db), "--home", str(home)]
    with provmark.open(db, home=home, flush_interval=0.01) as pm:
        stolen = pm.signer.key_id
        add_text(pm, "archived, by the stolen key")
    arch = tmp_path / "cold"
    assert main(["archive", "--to", str(arch), "--older-than", "0h", *args]) == 0
    answer = tmp_path / "answer.txt"
    answer.write_text("archived, by the stolen key")
    offline = ["verify", str(answer), "--archive", str(arch)]
    assert main(offline) == 0
    since = format_time(parse_time(now_utc()) - timedelta(hours=1))
    assert main(["keys", "revoke", stolen, "--since", since, *args]) == 0
    assert main(["keys", "export", "-o", str(tmp_path / "keyset.json"), *args]) == 0
    capsys.readouterr()
    code = main([*offline, "--keyset", str(tmp_path / "keyset.json")])
    out = capsys.readouterr()
    assert code == 1 and "key_revoked" in out.out + out.err
