"""Developer and admin views sanitise every string field by default (issue 18, item 7):
the fields the issue found raw (``input.datasets[].uri``, ``output.uri``,
``context.hostname``, ``actor.service``, ``parents[]``, ``fallback.reason``) and any other
not on the allow-list; the library view, the server's API and the web UI's record route
give the same answer, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server_harness import make_record, start_server

import provmark

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"
PII = (EMAIL, CARD, "4111111111111111")


def leaky_record(text: str) -> dict[str, Any]:
    """The record of the issue: personal data in fields no capture policy redacts."""
    record = make_record(text)
    record["input"]["datasets"] = [
        {"uri": f"s3://exports/{EMAIL}/chats.jsonl", "sha256": "ab" * 32}
    ]
    record["output"]["uri"] = f"file:///home/{EMAIL}/answer.txt"
    record["context"] = {"hostname": f"laptop-of-{EMAIL}", "python": "3.11.7"}
    record["actor"] = {"user_id": EMAIL, "service": f"billing for {EMAIL}"}
    record["parents"] = [f"mailto:{EMAIL}"]
    record["fallback"] = {
        "requested_model": "acme/big",
        "served_model": "acme/small",
        "reason": f"card {CARD} declined for {EMAIL}",
    }
    record["extra"] = {"note": f"call {EMAIL}", "n": 3}
    return record


def no_pii(obj: Any) -> bool:
    text = json.dumps(obj)
    return not any(p in text for p in PII)


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield str(tmp_path / "p.db")
    else:
        yield request.getfixturevalue("pg_url")


def test_library_views(target: str, tmp_path: Path) -> None:
    record = leaky_record("the answer")
    with provmark.open(target, home=tmp_path / "home", flush_interval=0.01) as pm:
        (rid,) = pm.view("ingest", principal="svc").ingest([record])
        for role in ("developer", "admin"):
            view = pm.view(role, principal="dev")
            shown = view.get(rid).model_dump(mode="json", exclude_none=True)
            assert no_pii(shown), json.dumps(shown, indent=1)
            # structural fields are shown as stored
            assert shown["output"]["sha256"] == record["output"]["sha256"]
            assert shown["input"]["datasets"][0]["sha256"] == "ab" * 32
            assert shown["fallback"]["served_model"] == "acme/small"
            assert shown["context"]["python"] == "3.11.7" and shown["extra"]["n"] == 3
            assert shown["actor"]["user_id"] == pm.hash_user_id(EMAIL)
            found = view.find(model="acme/summarizer")
            assert no_pii([r.model_dump(mode="json") for r in found.records])
            assert no_pii(view.verify("the answer").record.model_dump(mode="json"))
        auditor = pm.view("auditor", principal="auditor", reason="case 7")
        full = auditor.get(rid).model_dump(mode="json")
        assert full["output"]["uri"] == record["output"]["uri"]
        assert full["fallback"]["reason"] == record["fallback"]["reason"]


def test_server_api_and_web_ui_agree(tmp_path: Path) -> None:
    record = leaky_record("served answer")
    server = start_server(tmp_path / "srv")
    try:
        with server.client(server.token("ingest")) as ingest:
            assert ingest.post("/v1/records", json=[record]).status_code == 200
        rid = record["record_id"]
        for role in ("developer", "admin"):
            with server.client(server.token(role)) as client:
                api = client.get(f"/v1/records/{rid}")
                assert api.status_code == 200 and no_pii(api.json()), api.text
                listed = client.get("/v1/records", params={"model": "acme/summarizer"})
                assert listed.status_code == 200 and no_pii(listed.json())
                # the web UI's routes: which fields are hidden, no signed bytes, lineage
                checks = client.get(f"/v1/ui/records/{rid}/checks").json()
                hidden = set(checks["sanitized_fields"])
                assert {"output.uri", "context.hostname", "actor.service"} <= hidden, hidden
                assert {"fallback.reason", "input.datasets"} & hidden or any(
                    h.startswith(("input.datasets", "fallback")) for h in hidden
                )
                assert client.get(f"/v1/ui/records/{rid}/signed").status_code == 403
                lineage = client.get(f"/v1/ui/records/{rid}/lineage")
                assert lineage.status_code == 200 and no_pii(lineage.json()), lineage.text
        with server.client(server.token("auditor")) as client:
            full = client.get(f"/v1/records/{rid}").json()
            assert full["output"]["uri"] == record["output"]["uri"]
        # the library's developer view of the same stored record says the same
        with provmark.open(server.db, home=server.home, read_only=True) as pm:
            lib = pm.view("developer", principal="dev").get(rid)
        with server.client(server.token("developer")) as client:
            api = client.get(f"/v1/records/{rid}").json()
        for path in (("output", "uri"), ("context", "hostname"), ("actor", "service")):
            assert api[path[0]][path[1]] == getattr(getattr(lib, path[0]), path[1])
        assert api["parents"] == lib.parents
        assert api["fallback"]["reason"] == lib.fallback.reason  # type: ignore[union-attr]
    finally:
        server.stop()


# A UUIDv7 whose digits hold a Luhn-valid card number (about 1 random id in 2,000 does)
CARD_LIKE_ID = "01a24d48-c7b9-7593-9164-459423879ea1"


def test_parents_that_are_record_ids_are_shown_as_stored(tmp_path: Path) -> None:
    from provmark.privacy.views import sanitizer

    record = leaky_record("a child")
    record["parents"] = [CARD_LIKE_ID, f"mailto:{EMAIL}"]
    with provmark.open(tmp_path / "p.db", home=tmp_path / "home", flush_interval=0.01) as pm:
        # the detectors do take this id for a card number when it is not a parent
        flagged = sanitizer(pm).redact_document({"note": CARD_LIKE_ID}).doc["note"]
        assert flagged != CARD_LIKE_ID and "CARD" in flagged
        (rid,) = pm.view("ingest", principal="svc").ingest([record])
        for role in ("developer", "admin"):
            parents = pm.view(role, principal="dev").get(rid).parents
            assert parents[0] == CARD_LIKE_ID  # a link to a record, shown as stored
            assert no_pii(parents) and len(parents) == 2
