"""`POST /v1/disclose`, `GET /v1/disclose/{id}`, `GET /v1/disclosure/report` on a real
uvicorn: the same answers as the library and the CLI."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server_harness import Server, start_server

import provmark
from provmark.disclosure import coverage, disclose_record

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "golden"))
import make_golden as g

TEXT = "A generated paragraph about the harbour at dawn, long enough to matter."


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("disclose-server")
    home = folder / "home"
    ids = {}
    with provmark.open(folder / "provmark.db", home=home, provider="Acme Corp") as pm:
        with pm.record(model=provmark.Model("acme/writer", version="1"), input="p") as rec:
            rec.set_output(TEXT)
        ids["text"] = rec.record_id
        with pm.record(model=provmark.Model("acme/painter", version="2"), input="p") as rec:
            rec.set_output(g.png())
        ids["png"] = rec.record_id
    server = start_server(folder)
    try:
        yield {"server": server, "ids": ids, "folder": folder, "home": home}
    finally:
        server.stop()


def client(served: dict[str, Any]) -> Any:
    server: Server = served["server"]
    return server.client(server.token("developer"))


def test_upload_text_and_image(served: dict[str, Any]) -> None:
    with client(served) as c:
        r = c.post("/v1/disclose", files={"file": ("paint.png", g.png(), "image/png")})
        assert r.status_code == 200, r.text
        d = r.json()
        assert d["verdict"]["verified"] and d["record_id"] == served["ids"]["png"]
        assert d["media_type"] == "image/png" and d["complete"]
        f = {x["name"]: x for x in d["fields"]}
        assert f["provider"]["value"] == "Acme Corp" and f["provider"]["signed"]
        r = c.post("/v1/disclose", json={"text": TEXT})
        assert r.status_code == 200 and r.json()["record_id"] == served["ids"]["text"]
        r = c.post("/v1/disclose", json={"text": TEXT + " edited"})
        assert r.status_code == 200 and r.json()["verdict"]["status"] == "no_record"


def test_record_and_report_match_the_library(served: dict[str, Any]) -> None:
    with client(served) as c:
        by_id = c.get(f"/v1/disclose/{served['ids']['text']}").json()
        report = c.get("/v1/disclosure/report", params={"since": "30d"}).json()
        missing = c.get("/v1/disclose/pm-20000101-000000")
        bad = c.post("/v1/disclose", json={"nothing": 1})
        bad_since = c.get("/v1/disclosure/report", params={"since": "yesterday"})
        anonymous = served["server"].client().get("/v1/disclosure/report")
    with provmark.open(served["folder"] / "provmark.db", home=served["home"]) as pm:
        lib = disclose_record(pm, served["ids"]["text"]).to_json()
        lib_report = coverage(pm, since="30d").to_json()
    assert by_id["fields"] == lib["fields"] and by_id["verdict"]["status"] == "verified"
    assert report["outputs_captured"] == lib_report["outputs_captured"] == 2
    assert report["with_all_sb942_fields"] == 2 and len(report["days"]) >= 30
    assert missing.status_code == 404
    assert bad.status_code == 422 and bad.headers["content-type"].startswith(
        "application/problem+json"
    )
    assert bad_since.status_code == 422 and "since" in bad_since.json()["field"]
    assert anonymous.status_code == 401


def test_remote_client_carries_the_default_provider(served: dict[str, Any], tmp_path: Path) -> None:
    server: Server = served["server"]
    with provmark.open(
        server.url, token=server.token("ingest"), home=tmp_path, provider="Remote Co"
    ) as remote:
        with remote.record(model=provmark.Model("acme/remote", version="1"), input="p") as rec:
            rec.set_output("made through the remote client")
        remote.flush()
    with client(served) as c:
        d = c.get(f"/v1/disclose/{rec.record_id}").json()
    assert {f["name"]: f["value"] for f in d["fields"]}["provider"] == "Remote Co"
    assert d["verdict"]["verified"]
