"""The HTTP API end to end: a real ``provmark serve`` process, real SQLite files, httpx.

Every endpoint, problem+json errors, roles (developer sees no PII, auditor reads are
audit-logged), idempotent re-POST, and the OpenAPI document in docs/.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_harness import Server, free_port, make_record, start_server

from provmark.bundle import verify_bundle
from provmark.log.merkle import verify_consistency, verify_inclusion
from provmark.log.note import open_checkpoint, parse_verifier_key
from provmark.verify import leaf_hash_of

ROOT = Path(__file__).resolve().parents[2]
PII = ("jane.doe@example.com", "Summarize for jane")
MAX_BATCH = 50
MAX_BODY = 100_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(
        tmp_path_factory.mktemp("api"),
        "--max-batch",
        str(MAX_BATCH),
        "--max-body-bytes",
        str(MAX_BODY),
    )
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def tokens(server: Server) -> dict[str, str]:
    return {role: server.token(role) for role in ("ingest", "developer", "auditor", "admin")}


@pytest.fixture(scope="module")
def http(server: Server, tokens: dict[str, str]) -> Iterator[dict[str, httpx.Client]]:
    clients = {role: server.client(tok) for role, tok in tokens.items()}
    clients["anonymous"] = server.client()
    yield clients
    for c in clients.values():
        c.close()


def post(http: dict[str, httpx.Client], records: list[dict[str, Any]]) -> dict[str, Any]:
    r = http["ingest"].post("/v1/records", json=records)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def assert_problem(r: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["status"] == status and body["type"].startswith("https://") and body["detail"]
    if field is not None:
        assert body["field"] == field, body
        assert body["reason"]
    return body


def tree_size(http: dict[str, httpx.Client]) -> int:
    return int(http["developer"].get("/v1/checkpoints/latest").json()["size"])


# ---------------------------------------------------------------- public endpoints


def test_health_readiness_metrics_keys_and_placeholder(
    server: Server, http: dict[str, httpx.Client]
) -> None:
    anon = http["anonymous"]
    assert anon.get("/healthz").json() == {"status": "ok"}
    assert anon.get("/readyz").json() == {"status": "ready"}
    keys = anon.get("/.well-known/provmark/keys").json()
    assert keys["log_key"].startswith(keys["origin"] + "+")
    assert all({"key_id", "alg", "public_key", "not_before"} <= set(k) for k in keys["keys"])
    page = anon.get("/")
    assert page.status_code == 200 and 'href="/docs"' in page.text
    metrics = anon.get("/metrics").text
    for name in ("provmark_queue_depth", "provmark_log_tree_size", "provmark_http_requests_total"):
        assert name in metrics
    assert_problem(anon.get("/v1/nothing-here"), 404)


# ---------------------------------------------------------------- ingest


def test_post_json_array_then_read_by_id_and_slug(http: dict[str, httpx.Client]) -> None:
    batch = [make_record(f"array {i}") for i in range(3)]
    body = post(http, batch)
    assert body["accepted"] == 3 and body["stored"] == 3 and body["duplicates"] == []
    assert body["record_ids"] == [r["record_id"] for r in batch]
    one = http["auditor"].get(f"/v1/records/{batch[1]['record_id']}").json()
    assert one["view"] == "full" and one["input"]["snapshot"] == batch[1]["input"]["snapshot"]
    assert one["log"]["index"] >= 0 and one["signature"]["alg"] == "Ed25519"
    by_slug = http["auditor"].get(f"/v1/records/{one['slug']}").json()
    assert by_slug["record_id"] == one["record_id"]


def test_post_ndjson(http: dict[str, httpx.Client]) -> None:
    batch = [make_record(f"ndjson {i}") for i in range(4)]
    text = "\n".join(json.dumps(r) for r in batch) + "\n"
    r = http["ingest"].post(
        "/v1/records", content=text, headers={"content-type": "application/x-ndjson"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["stored"] == 4


def test_repost_is_idempotent(http: dict[str, httpx.Client]) -> None:
    batch = [make_record(f"idem {i}") for i in range(5)]
    post(http, batch)
    size = tree_size(http)
    again = post(http, [*batch, make_record("idem new")])
    assert again["stored"] == 1
    assert sorted(again["duplicates"]) == sorted(r["record_id"] for r in batch)
    assert tree_size(http) == size + 1


def test_a_batch_with_invalid_records_stores_nothing(http: dict[str, httpx.Client]) -> None:
    good = make_record("valid one")
    newer = make_record("newer schema", schema_version="9")
    wrong_type = make_record("wrong type", generated_at=12345)
    size = tree_size(http)
    r = http["ingest"].post("/v1/records", json=[good, newer, wrong_type])
    body = assert_problem(r, 422, "[1].schema_version")
    assert "newer than this provmark understands" in body["reason"]
    assert [e["field"] for e in body["errors"]] == ["[1].schema_version", "[2].generated_at"]
    assert tree_size(http) == size
    assert_problem(http["auditor"].get(f"/v1/records/{good['record_id']}"), 404)


@pytest.mark.parametrize(
    ("body", "content_type", "status", "field"),
    [
        (b"[{", "application/json", 400, "body"),
        (b'{"a": 1}\n{oops\n', "application/x-ndjson", 400, "body.line[2]"),
        (b'"just a string"', "application/json", 422, "body"),
        (b"[]", "application/json", 422, "body"),
        (b"[1, 2]", "application/json", 422, "[0]"),
        (b"<xml/>", "application/xml", 415, "header.content-type"),
        (
            b'[{"record_id": "not-a-uuid", "generated_at": "2026-01-01T00:00:00Z",'
            b' "model": {"name": "m"}}]',
            "application/json",
            422,
            "[0].record_id",
        ),
        (
            b'[{"record_id": "01a2b3c4-0000-7000-8000-000000000000",'
            b' "generated_at": "2026-01-01T00:00:00Z", "model": {"name": "m"}, "tags": {"k": 5}}]',
            "application/json",
            422,
            "[0].tags.k",
        ),
    ],
)
def test_malformed_input_is_a_problem_naming_the_field(
    http: dict[str, httpx.Client], body: bytes, content_type: str, status: int, field: str
) -> None:
    r = http["ingest"].post("/v1/records", content=body, headers={"content-type": content_type})
    assert_problem(r, status, field)


def test_oversized_body_and_too_many_records_are_413(http: dict[str, httpx.Client]) -> None:
    big = make_record("big", extra={"blob": "x" * 12_000})
    r = http["ingest"].post("/v1/records", json=[big] * 10)  # > MAX_BODY bytes
    assert_problem(r, 413, "body")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while streaming
        yield b"["
        for _ in range(10):
            yield json.dumps(big).encode() + b","
        yield b"{}]"

    r = http["ingest"].post(
        "/v1/records", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_problem(r, 413, "body")
    many = [make_record(f"many {i}", input={}, actor={}) for i in range(MAX_BATCH + 1)]
    assert_problem(http["ingest"].post("/v1/records", json=many), 413, "body")


# ---------------------------------------------------------------- auth and roles


def test_missing_bad_and_revoked_tokens_are_401(
    server: Server, http: dict[str, httpx.Client]
) -> None:
    r = http["anonymous"].get("/v1/records")
    assert_problem(r, 401, "header.authorization")
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert_problem(server.client("pmk_nope_nope").get("/v1/records"), 401)
    assert_problem(server.client("garbage").post("/v1/records", json=[make_record("x")]), 401)
    token = server.token("developer", "to-revoke")
    with server.client(token) as c:
        assert c.get("/v1/records?limit=1").status_code == 200
        token_id = token.split("_")[1]
        assert http["admin"].delete(f"/v1/tokens/{token_id}").status_code == 200
        assert_problem(c.get("/v1/records?limit=1"), 401)


@pytest.mark.parametrize(
    ("role", "method", "path"),
    [
        ("ingest", "GET", "/v1/records"),
        ("ingest", "POST", "/v1/verify"),
        ("ingest", "GET", "/v1/checkpoints/latest"),
        ("auditor", "POST", "/v1/records"),
        ("developer", "GET", "/v1/tokens"),
        ("auditor", "POST", "/v1/webhooks"),
        ("developer", "GET", "/v1/audit"),
    ],
)
def test_wrong_role_is_403(
    http: dict[str, httpx.Client], role: str, method: str, path: str
) -> None:
    r = http[role].request(method, path, json=[make_record("role")] if method == "POST" else None)
    body = assert_problem(r, 403, "header.authorization")
    assert body["role"] == role


def test_developer_sees_no_pii_anywhere(http: dict[str, httpx.Client]) -> None:
    rec = make_record(
        "developer view",
        error={"type": "Oops", "message": "failed for jane.doe@example.com"},
        status="error",
    )
    post(http, [rec])
    dev = http["developer"]
    rid = rec["record_id"]
    one = dev.get(f"/v1/records/{rid}")
    listing = dev.get("/v1/records", params={"limit": 20})
    verified = dev.post("/v1/verify", json={"text": "developer view"})
    proof = dev.get(f"/v1/records/{rid}/proof")
    bundle = dev.get(f"/v1/records/{rid}/bundle")
    for r in (one, listing, verified, proof, bundle):
        assert not any(p in r.text for p in PII), r.text
    data = one.json()
    assert data["view"] == "sanitized"
    assert data["input"]["snapshot"].startswith("Summarize for [EMAIL")  # redacted at ingest
    assert "[EMAIL" in data["error"]["message"] and data["error"]["type"] == "Oops"
    assert (
        data["actor"]["user_id"].startswith("hmac-sha256:")
        and data["actor"]["service"] == "summaries"
    )
    assert verified.json()["verified"] is True and verified.json()["record"]["view"] == "sanitized"
    assert "error.message" in assert_problem(bundle, 403, "path.record_id")["detail"]
    assert http["admin"].get(f"/v1/records/{rid}").json()["view"] == "sanitized"
    clean = make_record("nothing to hide", input={}, actor={"service": "batch"})
    post(http, [clean])
    assert dev.get(f"/v1/records/{clean['record_id']}/bundle").status_code == 200


def test_auditor_full_reads_are_audit_logged(http: dict[str, httpx.Client]) -> None:
    rec = make_record("audited read")
    post(http, [rec])
    aud = http["auditor"]
    r = aud.get(f"/v1/records/{rec['record_id']}", headers={"X-Provmark-Reason": "case 42"})
    assert r.json()["input"]["snapshot"] == rec["input"]["snapshot"]
    aud.get(f"/v1/records/{rec['record_id']}/bundle")
    http["developer"].get(f"/v1/records/{rec['record_id']}")  # sanitized: not a full read
    entries = aud.get("/v1/audit", params={"limit": 50}).json()["entries"]
    mine = [e for e in entries if rec["record_id"] in e["target"]]
    assert {e["action"] for e in mine} == {"record.read", "record.bundle"}
    assert all(e["role"] == "auditor" for e in mine)
    assert any(e["reason"] == "case 42" for e in mine)
    assert all(e["token_id"] and e["at"] for e in mine)


def test_tokens_admin_api_and_cli(server: Server, http: dict[str, httpx.Client]) -> None:
    created = http["admin"].post("/v1/tokens", json={"role": "developer", "name": "ci"})
    assert created.status_code == 201
    token = created.json()["token"]
    with server.client(token) as c:
        assert c.get("/v1/records?limit=1").status_code == 200
    listed = http["admin"].get("/v1/tokens").json()["tokens"]
    assert created.json()["token_id"] in {t["token_id"] for t in listed}
    assert all("token" not in t for t in listed)
    assert_problem(http["admin"].post("/v1/tokens", json={"role": "root"}), 422, "body.role")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "provmark.cli",
            "tokens",
            "create",
            "--role",
            "auditor",
            "--state",
            server.state,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    cli_token = out.stdout.strip().splitlines()[-1]
    with server.client(cli_token) as c:
        assert c.get("/v1/audit?limit=1").status_code == 200


# ---------------------------------------------------------------- query


def test_list_filters_and_cursor_pagination(http: dict[str, httpx.Client]) -> None:
    model = f"acme/paged-{uuid.uuid4().hex[:6]}"
    batch = [
        make_record(f"paged {i}", model={"name": model}, tags={"page": str(i % 2)})
        for i in range(7)
    ]
    post(http, batch)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"model": model, "limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = http["developer"].get("/v1/records", params=params).json()
        seen += [r["record_id"] for r in page["records"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert (
        pages == 3 and sorted(seen) == sorted(r["record_id"] for r in batch) and len(set(seen)) == 7
    )
    assert seen == [r["record_id"] for r in reversed(batch)]  # newest first
    tagged = http["developer"].get("/v1/records", params={"model": model, "tag": "page=1"}).json()
    assert tagged["count"] == 3
    sha = batch[4]["output"]["sha256"]
    by_output = http["developer"].get("/v1/records", params={"output": sha}).json()
    assert [r["record_id"] for r in by_output["records"]] == [batch[4]["record_id"]]
    assert (
        http["developer"].get("/v1/records", params={"model": model, "since": "1h"}).json()["count"]
        == 7
    )
    assert (
        http["developer"].get("/v1/records", params={"model": model, "until": "1h"}).json()["count"]
        == 0
    )
    assert_problem(
        http["developer"].get("/v1/records", params={"output": "abc"}), 422, "query.output"
    )
    assert_problem(
        http["developer"].get("/v1/records", params={"since": "yesterday"}), 422, "query.since"
    )
    assert_problem(
        http["developer"].get("/v1/records", params={"cursor": "zzz"}), 422, "query.cursor"
    )
    assert_problem(http["developer"].get("/v1/records", params={"limit": 0}), 422, "query.limit")
    assert_problem(
        http["developer"].get("/v1/records", params={"tag": "novalue"}), 422, "query.tag"
    )


# ---------------------------------------------------------------- verify, proofs, checkpoints


def test_verify_by_upload_text_and_hash(http: dict[str, httpx.Client]) -> None:
    rec = make_record("the verified summary")
    post(http, [rec])
    dev = http["developer"]
    up = dev.post(
        "/v1/verify", files={"file": ("summary.txt", b"the verified summary", "text/plain")}
    ).json()
    assert up["verified"] is True and up["record_id"] == rec["record_id"]
    assert [c["check"] for c in up["checks"]] == [
        "output_hash",
        "record_signature",
        "key_validity",
        "checkpoint_signature",
        "inclusion_proof",
    ]
    assert all(c["result"] == "pass" and c["detail"] for c in up["checks"])
    assert dev.post("/v1/verify", data={"text": "the verified summary"}).json()["verified"] is True
    sha = hashlib.sha256(b"the verified summary").hexdigest()
    assert dev.post("/v1/verify", json={"sha256": sha, "record_id": rec["record_id"]}).json()[
        "verified"
    ]
    b64 = base64.b64encode(b"the verified summary").decode()
    assert dev.post("/v1/verify", json={"content_base64": b64}).json()["verified"]
    edited = dev.post("/v1/verify", files={"file": ("s.txt", b"the verified summary!")}).json()
    assert edited["verified"] is False and edited["failed_check"] == "output_hash"
    assert (
        edited["checks"][0]["result"] == "fail" and "not made here" in edited["checks"][0]["detail"]
    )
    assert {c["result"] for c in edited["checks"][1:]} == {"not_run"}
    other = dev.post(
        "/v1/verify", json={"text": "the verified summary!", "record_id": rec["record_id"]}
    ).json()
    assert other["verified"] is False and other["failed_check"] == "output_hash"
    assert_problem(dev.post("/v1/verify", json={"sha256": "xyz"}), 422, "body.sha256")
    assert_problem(dev.post("/v1/verify", json={"text": "a", "sha256": "b"}), 422, "body")
    assert_problem(dev.post("/v1/verify", json={"text": 5}), 422, "body.text")
    assert_problem(dev.post("/v1/verify", files={"other": ("x", b"y")}), 422, "body.file")
    assert_problem(
        dev.post("/v1/verify", content=b"{", headers={"content-type": "application/json"}),
        400,
        "body",
    )


def test_proof_checkpoint_and_consistency_verify_independently(
    http: dict[str, httpx.Client],
) -> None:
    rec = make_record("proof subject", input={})  # the auditor view of a snapshot is decrypted
    post(http, [rec])
    dev = http["developer"]
    keys = dev.get("/.well-known/provmark/keys").json()
    log_key = parse_verifier_key(keys["log_key"])
    old = dev.get("/v1/checkpoints/latest").json()
    proof = dev.get(f"/v1/records/{rec['record_id']}/proof").json()
    checkpoint, _ = open_checkpoint(proof["checkpoint"], [log_key], origin=keys["origin"])
    stored = http["auditor"].get(f"/v1/records/{rec['record_id']}").json()
    payload_fields = {
        k: v for k, v in stored.items() if k not in ("slug", "view", "signature", "log")
    }
    from provmark.canonical import canonical_bytes

    leaf = leaf_hash_of(canonical_bytes(payload_fields), stored["signature"])
    assert base64.b64encode(leaf).decode() == proof["leaf_hash"]
    verify_inclusion(
        leaf,
        proof["index"],
        checkpoint.size,
        [base64.b64decode(p) for p in proof["proof"]],
        checkpoint.root_hash,
    )
    post(http, [make_record("grow the log")])
    new = dev.get("/v1/checkpoints/latest").json()
    assert new["size"] > old["size"]
    note = dev.get("/v1/checkpoints/latest", headers={"accept": "text/plain"})
    assert note.headers["content-type"].startswith("text/plain") and note.text.startswith(
        keys["origin"]
    )
    cons = dev.get(
        "/v1/checkpoints/consistency", params={"from": old["size"], "to": new["size"]}
    ).json()
    verify_consistency(
        old["size"],
        new["size"],
        base64.b64decode(old["root"]),
        base64.b64decode(new["root"]),
        [base64.b64decode(p) for p in cons["proof"]],
    )
    assert_problem(
        dev.get("/v1/checkpoints/consistency", params={"from": 5, "to": 2}), 422, "query.from"
    )
    assert_problem(
        dev.get("/v1/checkpoints/consistency", params={"from": 1, "to": 10**9}), 422, "query.to"
    )
    assert_problem(dev.get("/v1/checkpoints/consistency"), 422, "query.from")
    assert_problem(dev.get("/v1/records/01a2b3c4-0000-7000-8000-000000000000/proof"), 404)


def test_auditor_bundle_verifies_offline(http: dict[str, httpx.Client]) -> None:
    rec = make_record("bundled output")
    post(http, [rec])
    r = http["auditor"].get(f"/v1/records/{rec['record_id']}/bundle")
    assert r.headers["content-type"].startswith("application/vnd.provmark.bundle+json")
    keys = http["anonymous"].get("/.well-known/provmark/keys").json()
    from provmark.crypto.keys import PublicKey

    result = verify_bundle(
        r.json(),
        content_sha256=hashlib.sha256(b"bundled output").hexdigest(),
        keys=[PublicKey.from_json(k) for k in keys["keys"]],
        log_key=keys["log_key"],
    )
    assert result.record_id == rec["record_id"]


def test_concurrent_ingest_from_threads(
    http: dict[str, httpx.Client], server: Server, tokens: dict[str, str]
) -> None:
    batches = [
        [make_record(f"thread {t} {i}", input={}, actor={}) for i in range(20)] for t in range(6)
    ]
    size = tree_size(http)
    errors: list[str] = []

    def send(batch: list[dict[str, Any]]) -> None:
        with server.client(tokens["ingest"]) as c:
            r = c.post("/v1/records", json=batch)
            if r.status_code != 200:
                errors.append(r.text)

    threads = [
        threading.Thread(target=send, args=(b,)) for b in batches + batches
    ]  # each batch twice
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert tree_size(http) == size + 120


# ---------------------------------------------------------------- openapi, --no-auth


def test_openapi_document_in_docs_is_current() -> None:
    from provmark.server.openapi import render

    assert (ROOT / "docs" / "openapi.json").read_text() == render(), (
        "docs/openapi.json is stale: python -m provmark.server.openapi docs/openapi.json"
    )


def test_no_auth_refuses_a_public_address(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "provmark.cli",
            "serve",
            "--no-auth",
            "--host",
            "0.0.0.0",
            "--db",
            str(tmp_path / "p.db"),
            "--home",
            str(tmp_path / "h"),
            "--port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "loopback" in out.stderr


def test_no_auth_demo_serves_demo_records(tmp_path: Path) -> None:
    srv = Server(
        folder=tmp_path,
        db=str(tmp_path / "ignored.db"),
        args=["--no-auth", "--demo", "--demo-dir", str(tmp_path / "demo")],
    )
    srv.start(timeout=90)
    try:
        with srv.client() as c:
            page = c.get("/v1/records", params={"limit": 100}).json()
            # 8 requests of 3 records, a failed generation, a cover image, an erasure
            assert page["count"] == 27 and page["records"][0]["view"] == "full"
            # the demo captures with soft-binding fingerprints: an edited copy is found
            original = (tmp_path / "demo" / "summary.txt").read_text()
            exact = c.post("/v1/verify/fuzzy", json={"text": original}).json()
            assert exact["status"] == "identical"
            edited = original.replace("the", "teh", 1) + " and a few more words at the end"
            lead = c.post("/v1/verify/fuzzy", json={"text": edited}).json()
            # a MinHash estimate under a random per-store key: 0.47-0.7 on this short text
            assert lead["status"] == "derived" and lead["matches"][0]["similarity"] > 0.3
            bad = c.post("/v1/verify/fuzzy", json={"content_base64": "%%%"})
            assert bad.status_code == 422 and bad.json()["field"] == "body.content_base64"
        assert "AUTHENTICATION IS OFF" in srv.log.read_text()
    finally:
        srv.stop()


# ---------------------------------------------------------------- PostgreSQL, queue mode


@pytest.mark.postgres
def test_server_on_postgresql_with_state_in_the_same_database(tmp_path: Path, pg_url: str) -> None:
    import psycopg

    srv = start_server(tmp_path, db=pg_url, state=pg_url)
    try:
        with srv.client(srv.token("ingest")) as ing, srv.client(srv.token("auditor")) as aud:
            batch = [make_record(f"pg {i}") for i in range(50)]
            assert ing.post("/v1/records", json=batch).json()["stored"] == 50
            assert ing.post("/v1/records", json=batch).json()["stored"] == 0
            one = aud.get(f"/v1/records/{batch[7]['record_id']}").json()
            assert one["input"]["snapshot"] == batch[7]["input"]["snapshot"]
            page = aud.get("/v1/records", params={"limit": 20}).json()
            assert page["count"] == 20 and page["next_cursor"]
            v = aud.post("/v1/verify", data={"text": "pg 7"}).json()
            assert v["verified"] and v["record_id"] == batch[7]["record_id"]
            proof = aud.get(f"/v1/records/{batch[3]['record_id']}/proof").json()
            assert proof["tree_size"] == 50
            assert aud.get("/v1/audit").json()["entries"]
    finally:
        srv.stop()
    with psycopg.connect(pg_url) as conn:
        tables = {
            r[0]
            for r in conn.execute("SELECT tablename FROM pg_tables WHERE tablename LIKE 'pmsrv_%'")
        }
    assert {"pmsrv_tokens", "pmsrv_audit", "pmsrv_webhooks", "pmsrv_deliveries"} <= tables


@pytest.mark.nats
def test_queue_mode_acknowledges_once_persisted_and_a_worker_stores(tmp_path: Path) -> None:
    import asyncio

    import uvicorn

    import provmark
    from provmark.queue import QueueError
    from provmark.queue.jetstream import NatsQueue
    from provmark.queue.worker import run_worker
    from provmark.server import Settings, create_app

    tag = uuid.uuid4().hex[:10]
    try:
        queue = NatsQueue(stream=f"SRV{tag.upper()}", subject=f"srv.{tag}", durable=f"w{tag}")
    except QueueError as exc:
        pytest.skip(f"NATS JetStream not reachable: {exc}")
    pm = provmark.open(tmp_path / "q.db", home=tmp_path / "home")
    app = create_app(pm, settings=Settings(state=str(tmp_path / "state.db"), queue=queue))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    stop = threading.Event()
    try:
        srv = Server(folder=tmp_path, db="", port=port, state_target=str(tmp_path / "state.db"))
        for _ in range(100):
            if server.started:
                break
            time.sleep(0.05)
        batch = [make_record(f"queued {i}") for i in range(30)]
        with srv.client(srv.token("ingest")) as c:
            r = c.post("/v1/records", json=batch)
            assert r.status_code == 202 and r.json()["queued"] is True
            assert queue.pending() >= 1  # persisted in the stream, not yet stored
            assert pm.store.count() == 0
            assert "provmark_queue_lag" in c.get("/metrics").text
            bad = c.post("/v1/records", json=[make_record("bad", schema_version="99")])
            assert_problem(bad, 422, "[0].schema_version")
        worker = threading.Thread(
            target=run_worker, args=(queue, pm), kwargs={"stop": stop}, daemon=True
        )
        worker.start()
        deadline = time.monotonic() + 30
        while pm.store.count() < 30 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pm.store.count() == 30
        stop.set()
        worker.join(15)
    finally:
        stop.set()
        server.should_exit = True
        thread.join(15)
        pm.close()

        async def cleanup() -> None:
            import nats

            nc = await nats.connect("nats://127.0.0.1:4222")
            js = nc.jetstream()
            for name in (queue.stream, queue.stream + "_DEAD"):
                with contextlib.suppress(Exception):
                    await js.delete_stream(name)
            await nc.close()

        queue.close()
        asyncio.run(cleanup())


def test_several_worker_processes_share_the_port_without_nagle_delays(tmp_path: Path) -> None:
    srv = start_server(tmp_path, "--workers", "2", "--no-webhooks")
    try:
        with srv.client(srv.token("ingest")) as ing, srv.client(srv.token("developer")) as dev:
            batches = [[make_record(f"worker {b} {i}") for i in range(25)] for b in range(8)]
            for batch in batches:
                assert ing.post("/v1/records", json=batch).status_code == 200
            assert dev.get("/v1/checkpoints/latest").json()["size"] == 200
            for _ in range(20):
                assert dev.get("/healthz").status_code == 200
    finally:
        srv.stop()


def test_the_shared_listening_socket_is_tcp_so_replies_are_not_delayed() -> None:
    """The worker processes' socket is made with proto=IPPROTO_TCP, so asyncio sets
    TCP_NODELAY on each accepted connection (with proto 0 every keep-alive reply waited
    ~40 ms for a delayed ACK). Checked on the socket, not with a clock (bench/ times it)."""
    import socket

    from provmark.server.run import _listen

    port = free_port()
    sock = _listen("127.0.0.1", port)
    try:
        assert sock.proto == socket.IPPROTO_TCP
        sock.listen(1)
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = sock.accept()
        try:
            assert accepted.proto == socket.IPPROTO_TCP
        finally:
            accepted.close()
            client.close()
    finally:
        sock.close()
