"""provmark export / mark / c2pa-read / c2pa dev-cert, in-process and as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import rdflib
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey

import provmark
from provmark.cli import main
from provmark.export.intoto import verify_lines
from provmark.export.w3c_prov import parse, summary, validate
from provmark.record import now_utc

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
sys.path.insert(0, str(GOLDEN))
import make_golden as g  # noqa: E402

BULK = 1100  # more than one page of 1000


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A store with the golden lineage, an image record and BULK small records."""
    folder = tmp_path_factory.mktemp("export")
    db, home = folder / "provmark.db", folder / "home"
    png = g.png()
    (folder / "gen.png").write_bytes(png)
    image_id = g.rid(500, g.T0)
    bulk = [
        {
            "record_id": g.rid(1000 + i, g.T0),
            "generated_at": "2024-07-02T00:00:00.000000Z",
            "operation": "embeddings",
            "model": {"name": "acme/embedder", "version": "1"},
            "output": {"sha256": g.sha(f"vector {i}")},
            "tags": {"batch": "bulk"},
        }
        for i in range(BULK)
    ]
    image = {
        "record_id": image_id,
        "generated_at": now_utc(),  # verifiable with the store's fresh key
        "operation": "image_generation",
        "model": {"name": "acme/painter", "version": "2.0", "provider": "acme"},
        "output": {"sha256": g.sha(png), "media_type": "image/png", "size": len(png)},
    }
    g.import_history_key(home)
    with provmark.open(db, home=home) as pm:
        pm.ingest(g.drafts())
        pm.ingest(bulk)
        pm.ingest([image])
        keys = pm.public_keys()
    return {"folder": folder, "db": db, "home": home, "image": image_id, "keys": keys}


def cli(site: dict[str, Any], *argv: str) -> int:
    return main([*argv, "--db", str(site["db"]), "--home", str(site["home"])])


def run(site: dict[str, Any], *argv: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "provmark.cli",
            *argv,
            "--db",
            str(site["db"]),
            "--home",
            str(site["home"]),
        ],
        capture_output=True,
        timeout=120,
    )


# ---------------------------------------------------------------- export


@pytest.mark.parametrize("fmt", ["prov-json", "prov-o", "prov-jsonld"])
def test_export_lineage_as_prov(site: dict[str, Any], tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "lineage.out"
    assert cli(site, "export", "--format", fmt, "--lineage", g.FAILED, "-o", str(out)) == 0
    doc = parse(out.read_bytes(), fmt)
    validate(doc)
    assert summary(doc)["prov:Activity"] == 3
    assert summary(doc)["prov:Derivation"] == 1


def test_export_prov_n_and_turtle_parse(site: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "x.provn"
    assert cli(site, "export", "-f", "prov-n", "--model", "acme/translator", "-o", str(out)) == 0
    text = out.read_text()
    assert text.startswith("document") and text.count("activity(") == 2
    ttl = tmp_path / "x.ttl"
    assert cli(site, "export", "-f", "prov-o", "--record", g.ROOT, "-o", str(ttl)) == 0
    assert len(rdflib.Graph().parse(ttl, format="turtle")) > 20


def test_export_in_toto_verifies(site: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "x.intoto.jsonl"
    rc = cli(site, "export", "-f", "in-toto", "--lineage", g.CHILD, "-o", str(out))
    assert rc == 0
    statements = verify_lines(out, site["keys"])
    assert [s["predicate"]["record_id"] for s in statements] == [g.ROOT, g.CHILD]
    key = site["keys"][0]
    from cryptography.hazmat.primitives import serialization

    sslib = SSlibKey.from_crypto(
        serialization.load_pem_public_key(key.public_key.encode()), keyid=key.key_id
    )  # type: ignore[arg-type]
    for line in out.read_text().splitlines():
        Envelope.from_dict(json.loads(line)).verify([sslib], 1)


def test_in_toto_refuses_a_failed_record_unless_skipped(
    site: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.jsonl"
    assert cli(site, "export", "-f", "in-toto", "--lineage", g.FAILED, "-o", str(out)) == 2
    assert "output.sha256" in capsys.readouterr().err
    assert not out.exists()  # nothing half-written
    assert (
        cli(site, "export", "-f", "in-toto", "--lineage", g.FAILED, "--skip-failed", "-o", str(out))
        == 0
    )
    assert len(out.read_text().splitlines()) == 2


def test_openlineage_streams_every_page_with_progress(site: dict[str, Any]) -> None:
    done = run(site, "export", "-f", "openlineage", "--tag", "batch=bulk", "--progress")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == BULK
    first = json.loads(lines[0])
    assert first["eventType"] == "COMPLETE" and first["run"]["runId"] == g.rid(1000, g.T0)
    err = done.stderr.decode()
    assert "exporting [" in err and f"{BULK}/{BULK}" in err


def test_limit_and_order(site: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "x.jsonl"
    assert cli(site, "export", "-f", "openlineage", "--limit", "3", "--desc", "-o", str(out)) == 0
    ids = [json.loads(line)["run"]["runId"] for line in out.read_text().splitlines()]
    assert ids[0] == site["image"] and len(ids) == 3


def test_unknown_format_and_missing_record(
    site: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(site, "export", "--format", "prov-xml") == 2
    err = capsys.readouterr().err
    assert "unknown export format 'prov-xml'" in err and "prov-json" in err
    assert cli(site, "export", "-f", "prov-json", "--record", g.rid(9999, g.T0)) == 2
    assert "no record" in capsys.readouterr().err
    assert cli(site, "export", "-f", "prov-json", "--send", "http://127.0.0.1:9") == 2
    assert "openlineage only" in capsys.readouterr().err


class _Sink(BaseHTTPRequestHandler):
    bodies: ClassVar[list[Any]] = []

    def do_POST(self) -> None:
        type(self).bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def sink() -> Iterator[tuple[str, type[_Sink]]]:
    handler = type("Sink", (_Sink,), {"bodies": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_send_openlineage_events(
    site: dict[str, Any], sink: tuple[str, type[_Sink]], capsys: pytest.CaptureFixture[str]
) -> None:
    url, handler = sink
    assert cli(site, "export", "-f", "openlineage", "--lineage", g.FAILED, "--send", url) == 0
    assert "sent 3 OpenLineage events" in capsys.readouterr().out
    assert [b["eventType"] for b in handler.bodies] == ["COMPLETE", "COMPLETE", "FAIL"]


# ---------------------------------------------------------------- C2PA


def test_mark_and_read_with_a_dev_certificate(
    site: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = str(site["home"])
    src, out = site["folder"] / "gen.png", tmp_path / "marked.png"
    assert (
        main(
            [
                "mark",
                str(src),
                "-o",
                str(out),
                "--record",
                site["image"],
                "--db",
                str(site["db"]),
                "--home",
                str(tmp_path / "nocerts"),
            ]
        )
        == 2
    )
    assert "provmark c2pa dev-cert" in capsys.readouterr().err

    assert main(["c2pa", "dev-cert", "--home", home, "--force"]) == 0
    ca = site["home"] / "c2pa" / "ca.pem"
    assert ca.exists() and (site["home"] / "c2pa" / "key.pem").stat().st_mode & 0o777 == 0o600
    assert main(["c2pa", "dev-cert", "--home", home]) == 2  # no silent replacement
    assert "--force" in capsys.readouterr().err

    assert cli(site, "mark", str(src), "-o", str(out), "--record", site["image"]) == 0
    assert "embedded" in capsys.readouterr().out
    # without --record: the record whose output is the image's bytes
    found = tmp_path / "found.png"
    assert cli(site, "mark", str(src), "-o", str(found)) == 0
    assert "embedded" in capsys.readouterr().out
    assert cli(site, "c2pa-read", str(found), "--json") == 0
    assert json.loads(capsys.readouterr().out)["record"]["record_id"] == site["image"]

    assert cli(site, "c2pa-read", str(out), "--trust", str(ca), "--check-log") == 0
    text = capsys.readouterr().out
    assert text.startswith("TRUSTED") and "c2pa.created" in text
    assert f"VERIFIED  {out} against the log" in text and "inclusion_proof" in text

    assert cli(site, "c2pa-read", str(out), "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["state"] == "Valid" and report["record"]["record_id"] == site["image"]
    assert report["disclosure"]["provider"] == "acme"

    bad = tmp_path / "bad.png"
    bad.write_bytes(g.change_one_pixel(out.read_bytes()))
    done = run(site, "c2pa-read", str(bad), "--trust", str(ca))
    assert done.returncode == 1
    assert b"NOT VERIFIED" in done.stderr and b"assertion.dataHash.mismatch" in done.stderr


def test_mark_bad_input(
    site: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["c2pa", "dev-cert", "--dir", str(tmp_path / "c"), "--alg", "Ed25519"]) == 0
    certs = ["--cert", str(tmp_path / "c" / "chain.pem"), "--key", str(tmp_path / "c" / "key.pem")]
    blob = tmp_path / "x.bin"
    blob.write_bytes(bytes(range(256)))
    out = str(tmp_path / "o")
    assert cli(site, "mark", str(blob), "-o", out, "--record", site["image"], *certs) == 2
    assert "not an image" in capsys.readouterr().err
    other = tmp_path / "other.png"
    other.write_bytes(g.png(2, 2))
    assert cli(site, "mark", str(other), "-o", out, "--record", site["image"], *certs) == 2
    assert "is not the output of record" in capsys.readouterr().err
    assert (
        cli(site, "mark", str(other), "-o", out, "--record", site["image"], "--cert", certs[1]) == 2
    )
    assert "both --cert and --key" in capsys.readouterr().err
    assert cli(site, "c2pa-read", str(other)) == 1
    assert "no C2PA manifest" in capsys.readouterr().err
    assert cli(site, "mark", str(other), "-o", out, *certs) == 2  # no --record, no record of it
    assert "no record states" in capsys.readouterr().err
