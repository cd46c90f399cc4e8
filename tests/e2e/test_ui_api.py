"""The JSON endpoints under /v1/ui/ that the web UI uses, against the real server:
roles and tokens, the dashboard's numbers, lineage, exports, signed bytes, record checks
(and a tampered row failing them), C2PA; and ``mount`` itself. No browser needed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ui_harness import PII, UIServer

import provmark
from provmark.record import new_record_id, now_utc

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
UI_GETS = (
    "/v1/ui/dashboard",
    "/v1/ui/checkpoints",
    "/v1/ui/records/{id}/checks",
    "/v1/ui/records/{id}/lineage",
    "/v1/ui/records/{id}/signed",
    "/v1/ui/records/{id}/export/prov-json",
)


def test_ui_endpoints_need_a_reading_token(
    server: UIServer, tokens: dict[str, str], demo: dict[str, Any]
) -> None:
    paths = [p.format(id=demo["record_id"]) for p in UI_GETS]
    with server.client() as anonymous:
        for path in paths:
            r = anonymous.get(path)
            assert r.status_code == 401, path
            assert r.json()["field"] == "header.authorization"
        assert anonymous.post("/v1/ui/c2pa", files={"file": ("a.txt", b"x")}).status_code == 401
        assert anonymous.get("/v1/ui/session").status_code == 401
    with server.client("pmk_000000000000_nope") as bad:
        assert bad.get("/v1/ui/session").status_code == 401
    with server.client(tokens["ingest"]) as ingest:
        for path in paths:
            r = ingest.get(path)
            assert r.status_code == 403, path
            assert r.json()["allowed_roles"] == ["developer", "auditor", "admin"]
        me = ingest.get("/v1/ui/session").json()
        assert me["role"] == "ingest" and me["can_read"] is False
    for role, view in (("developer", "sanitized"), ("admin", "sanitized"), ("auditor", "full")):
        with server.client(tokens[role]) as c:
            me = c.get("/v1/ui/session").json()
            assert (me["role"], me["view"], me["can_read"], me["auth"]) == (role, view, True, True)
            assert tokens[role].split("_")[1] == me["token_id"]


def test_dashboard_numbers(server: UIServer, tokens: dict[str, str]) -> None:
    with server.client(tokens["developer"]) as c:
        d = c.get("/v1/ui/dashboard", params={"window": "24h"}).json()
        bad = c.get("/v1/ui/dashboard", params={"window": "3h"})
    assert bad.status_code == 422 and bad.json()["field"] == "query.window"
    assert d["bucket_seconds"] == 900 and len(d["series"]) == 96
    total = d["totals"]["records"]
    assert d["records"] == total == d["totals"]["tree_size"]  # everything is from the last 90 min
    assert sum(s["count"] for s in d["series"]) == total
    assert sum(m["count"] for m in d["by_model"]) == total
    assert sum(o["count"] for o in d["by_operation"]) == total
    assert d["by_status"]["error"] == d["failures"]["error_records"] > 0
    assert sum(s["errors"] for s in d["series"]) == d["failures"]["error_records"]
    demo = next(m for m in d["by_model"] if m["name"] == "provmark/markov-demo")
    assert (demo["version"], demo["count"]) == ("1.0", 25)
    assert d["checkpoint"]["size"] == total and 0 <= d["checkpoint"]["age_seconds"] < 600
    assert d["truncated"] is False
    starts = [s["start"] for s in d["series"]]
    assert starts == sorted(starts) and starts[0].endswith(
        (":00:00.000000Z", ":15:00.000000Z", ":30:00.000000Z", ":45:00.000000Z")
    )
    assert not any(p in json.dumps(d) for p in PII)


def test_failed_verifications_are_counted(server: UIServer, tokens: dict[str, str]) -> None:
    with server.client(tokens["developer"]) as c:
        before = c.get("/v1/ui/dashboard").json()["failures"]
        answer = c.post("/v1/verify", files={"text": (None, "never generated here")}).json()
        assert answer["verified"] is False
        after = c.get("/v1/ui/dashboard").json()["failures"]
    was = before["verification_failures"].get("output_hash", 0)
    assert after["verification_failures"]["output_hash"] == was + 1
    assert after["verifications"]["failed"] == before["verifications"].get("failed", 0) + 1


def test_lineage(server: UIServer, tokens: dict[str, str], demo: dict[str, Any]) -> None:
    with server.client(tokens["developer"]) as c:
        g = c.get(f"/v1/ui/records/{demo['translation']}/lineage").json()
        shallow = c.get(f"/v1/ui/records/{demo['translation']}/lineage", params={"depth": 1}).json()
        missing = c.get(f"/v1/ui/records/{new_record_id()}/lineage")
        too_deep = c.get(f"/v1/ui/records/{demo['translation']}/lineage", params={"depth": 99})
    depth = {n["id"]: n["depth"] for n in g["nodes"]}
    first, second, artifact = demo["parents"]
    assert depth == {
        demo["translation"]: 0,
        demo["report"]: -1,
        first: -2,
        second: -2,
        artifact: -2,
        demo["review"]: 1,
    }
    assert {(e["from"], e["to"]) for e in g["edges"]} == {
        (demo["report"], demo["translation"]),
        (first, demo["report"]),
        (second, demo["report"]),
        (artifact, demo["report"]),
        (demo["translation"], demo["review"]),
    }
    external = next(n for n in g["nodes"] if n["id"] == artifact)
    assert external["kind"] == "external" and external["reason"] == "not a provmark record"
    assert g["children"]["complete"] is True
    assert {n["id"] for n in shallow["nodes"]} == {
        demo["translation"],
        demo["report"],
        demo["review"],
    }
    assert missing.status_code == 404
    assert too_deep.status_code == 422 and too_deep.json()["field"] == "query.depth"
    assert not any(p in json.dumps(g) for p in PII)


def test_exports_follow_the_roles(
    server: UIServer, tokens: dict[str, str], demo: dict[str, Any]
) -> None:
    path = f"/v1/ui/records/{demo['report']}/export"
    with server.client(tokens["developer"]) as dev:
        refused = dev.get(f"{path}/prov-json")
        image = dev.get(f"/v1/ui/records/{demo['image']}/export/openlineage")
        unknown = dev.get(f"{path}/pdf")
    assert refused.status_code == 403
    assert refused.json()["type"].endswith("/export-needs-auditor")
    assert "actor.user_id" in refused.json()["detail"]
    assert image.status_code == 200  # nothing in that record is hidden from developers
    assert unknown.status_code == 404 and unknown.json()["field"] == "path.fmt"
    with server.client(tokens["auditor"]) as aud:
        prov = aud.get(f"{path}/prov-json", headers={"x-provmark-reason": "case 7"})
        intoto = aud.get(f"{path}/in-toto")
        audit = aud.get("/v1/audit", params={"limit": 20}).json()["entries"]
    assert prov.status_code == 200
    assert prov.headers["content-disposition"].endswith('.prov.json"')
    doc = prov.json()
    assert any(demo["report"] in key for key in json.dumps(doc).split('"'))
    envelopes = [json.loads(line) for line in intoto.text.splitlines()]
    assert len(envelopes) == 3  # the record and its two parent records
    entry = next(e for e in audit if e["action"] == "record.export" and e["reason"] == "case 7")
    assert demo["report"] in entry["target"] and demo["parents"][0] in entry["target"]


def test_signed_bytes_and_checks(
    server: UIServer, tokens: dict[str, str], demo: dict[str, Any]
) -> None:
    rid = demo["record_id"]
    with server.client(tokens["auditor"]) as aud:
        signed = aud.get(f"/v1/ui/records/{rid}/signed").json()
        checks = aud.get(f"/v1/ui/records/{rid}/checks").json()
    payload = signed["payload"].encode()
    sig = json.dumps(signed["signature"], separators=(",", ":"), sort_keys=True).encode()
    leaf = hashlib.sha256(b'\x00{"record":' + payload + b',"signature":' + sig + b"}").digest()
    assert base64.b64encode(leaf).decode() == signed["log"]["leaf_hash"]
    assert checks["verified"] is True and checks["sanitized_fields"] == []
    assert [c["check"] for c in checks["checks"]] == [
        "record_signature",
        "key_validity",
        "checkpoint_signature",
        "inclusion_proof",
    ]
    assert {c["result"] for c in checks["checks"]} == {"pass"}
    with server.client(tokens["developer"]) as dev:
        refused = dev.get(f"/v1/ui/records/{rid}/signed")
        dev_checks = dev.get(f"/v1/ui/records/{rid}/checks").json()
        image = dev.get(f"/v1/ui/records/{demo['image']}/signed")
    assert refused.status_code == 403 and refused.json()["field"] == "actor.user_id"
    assert dev_checks["verified"] is True and dev_checks["sanitized_fields"] == ["actor.user_id"]
    assert image.status_code == 200


def test_c2pa_endpoint(server: UIServer, tokens: dict[str, str], demo: dict[str, Any]) -> None:
    with server.client(tokens["developer"]) as c:
        plain = c.post("/v1/ui/c2pa", files={"file": ("notes.txt", b"just text")}).json()
        empty = c.post("/v1/ui/c2pa", files={"text": (None, "x")})
        if demo["marked"] is None:
            pytest.skip("c2pa-python is not installed")
        marked = Path(demo["marked"])
        found = c.post("/v1/ui/c2pa", files={"file": (marked.name, marked.read_bytes())}).json()
        bare = marked.with_name("painting.png")
        unmarked = c.post("/v1/ui/c2pa", files={"file": (bare.name, bare.read_bytes())}).json()
        text, manifest = GOLDEN / "c2pa-summary.txt", GOLDEN / "c2pa-summary.c2pa"
        sidecar = c.post(
            "/v1/ui/c2pa",
            files={
                "file": (text.name, text.read_bytes()),
                "sidecar": (manifest.name, manifest.read_bytes()),
            },
        ).json()
    assert plain["found"] is False and "not an image format" in plain["reason"]
    assert "/tmp" not in plain["reason"]
    assert empty.status_code == 422 and empty.json()["field"] == "body.file"
    assert found["found"] is True and found["verified"] is True
    assert found["record_id"] == demo["image"]
    assert found["manifest"]["state"] == "Valid" and found["manifest"]["embedded"] is True
    assert [c["check"] for c in found["checks"]][:2] == ["c2pa_manifest", "c2pa_record"]
    assert {c["result"] for c in found["checks"]} == {"pass"}
    assert unmarked["found"] is False and "no C2PA manifest" in unmarked["reason"]
    assert "/tmp" not in unmarked["reason"]
    # a manifest beside a text file, for a record of another store: read, but not verified here
    assert sidecar["found"] is True and sidecar["manifest"]["sidecar"] is True
    assert sidecar["manifest"]["state"] == "Valid" and sidecar["verified"] is False
    results = {c["check"]: c["result"] for c in sidecar["checks"]}
    assert results["c2pa_manifest"] == "pass" and results["c2pa_record"] == "fail"
    assert results["inclusion_proof"] == "not_run"


@pytest.fixture
def small_server(tmp_path: Path) -> Iterator[tuple[UIServer, list[str]]]:
    with provmark.open(tmp_path / "provmark.db", home=tmp_path / "home") as pm:
        ids = pm.ingest(
            [
                {
                    "record_id": new_record_id(),
                    "generated_at": now_utc(),
                    "operation": "chat",
                    "model": {"name": "acme/tiny"},
                    "output": {"sha256": hashlib.sha256(str(i).encode()).hexdigest()},
                }
                for i in range(3)
            ]
        )
    srv = UIServer(folder=tmp_path, db=tmp_path / "provmark.db", home=tmp_path / "home").start()
    try:
        yield srv, ids
    finally:
        srv.stop()


def test_a_changed_row_fails_the_record_checks(small_server: tuple[UIServer, list[str]]) -> None:
    srv, ids = small_server
    token = srv.token("auditor")
    with sqlite3.connect(srv.db) as db:
        payload = db.execute(
            "SELECT payload FROM records WHERE record_id = ?", (ids[1],)
        ).fetchone()[0]
        forged = bytes(payload).replace(b"acme/tiny", b"acme/huge")
        db.execute("UPDATE records SET payload = ? WHERE record_id = ?", (forged, ids[1]))
    with srv.client(token) as c:
        good = c.get(f"/v1/ui/records/{ids[0]}/checks").json()
        bad = c.get(f"/v1/ui/records/{ids[1]}/checks").json()
    assert good["verified"] is True
    assert bad["verified"] is False and bad["failed_check"] == "record_signature"
    results = {c["check"]: c["result"] for c in bad["checks"]}
    assert results == {
        "record_signature": "fail",
        "key_validity": "not_run",
        "checkpoint_signature": "not_run",
        "inclusion_proof": "not_run",
    }


def test_mount_replaces_the_placeholder_once(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from provmark.server import Settings, create_app
    from provmark.web import mount

    with provmark.open(tmp_path / "provmark.db", home=tmp_path / "home") as pm:
        app = create_app(pm, settings=Settings(state=str(tmp_path / "server.db")), mounts=[mount])
        after = len(app.router.routes)
        assert any(getattr(r, "path", "") == "/ui" for r in app.router.routes)
        mount(app)
        assert len(app.router.routes) == after
        assert [r for r in app.router.routes if getattr(r, "path", None) == "/"].__len__() == 1
        schema = app.openapi()
        assert not [p for p in schema["paths"] if p.startswith(("/v1/ui", "/ui"))]
        with TestClient(app) as client:
            index = client.get("/")
            assert "web UI is not installed" not in index.text
            assert '<script type="module" src="/ui/main.js">' in index.text
            assert client.get("/v1/ui/session").status_code == 401
