"""Never "stored" unless stored exactly; one poison record never stops ingest (issue 18).

The exact inputs of the issue, through the library (``Provmark.ingest``, capture) and a
real ``provmark serve`` process, on SQLite and on PostgreSQL: NaN/Infinity, integers past
2^53, NUL characters, duplicate ids in one batch, JSON nested 10,000 deep, an overflowing
``tree_size``, ``since=99999999999w``; and records the store itself refuses (a real
refusal: PostgreSQL's B-tree row limit, SQLite's length limit) go to the dead-letter
table with the reason while the writer goes on.
"""

from __future__ import annotations

import json
import math
import random
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_harness import Server, make_record, start_server

import provmark
from provmark.errors import CaptureError, InvalidBatch, RecordsRefused
from provmark.store import deadletters

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
JSON = "application/json"
INTERNALS = ("127.0.0.1", ":5432", "provmark_test_", "postgresql://", "Traceback")


def target(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return str(tmp_path / "limits.db")
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture(params=BACKENDS)
def pm(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[provmark.Provmark]:
    db = target(request.param, tmp_path, request)
    with provmark.open(db, home=tmp_path / "home", flush_interval=0.01) as pm:
        yield pm


def unreadable_user() -> str:
    """An actor id PostgreSQL cannot index: ~9 KB of text that does not compress."""
    rnd = random.Random(18)
    return "".join(chr(rnd.randint(0x4E00, 0x9FFF)) for _ in range(3000))


# ---------------------------------------------------------------- library


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"usage": {"latency_ms": float("inf")}}, "[0].usage.latency_ms"),
        ({"extra": {"n": 9007199254740993}}, "[0].extra.n"),
        ({"params": {"n": 2**70}}, "[0].params.n"),
        ({"model": {"name": "acme\x00sum"}}, "[0].model.name"),
        ({"tags": {"k": "\ud800"}}, "[0].tags.k"),
    ],
)
def test_library_ingest_refuses_what_it_cannot_store_exactly(
    pm: provmark.Provmark, override: dict[str, Any], field: str
) -> None:
    record = make_record("exact", **override)
    with pytest.raises(InvalidBatch) as info:
        pm.ingest([record])
    assert info.value.field == field
    assert pm.store.count() == 0 and pm.store.get(record["record_id"]) is None


def test_library_batch_with_one_bad_record_and_duplicates_stores_nothing(
    pm: provmark.Provmark,
) -> None:
    a, b = make_record("a"), make_record("b")
    with pytest.raises(InvalidBatch) as info:
        pm.ingest([a, make_record("inf", usage={"latency_ms": float("inf")}), b])
    assert [f for f, _ in info.value.errors] == ["[1].usage.latency_ms"]
    with pytest.raises(InvalidBatch) as info:
        pm.ingest([a, b, dict(a)])
    assert info.value.errors[0][0] == "[2].record_id"
    assert pm.store.count() == 0
    assert pm.ingest([a, b]) == [a["record_id"], b["record_id"]]
    assert pm.store.count() == 2


def test_capture_never_signs_a_big_integer_as_a_float(pm: provmark.Provmark) -> None:
    model = provmark.Model("acme/m")
    with (
        pytest.raises(CaptureError, match=r"params\.n: integer 1180591620717411303424"),
        pm.record(model=model, input="hi", params={"n": 2**70}) as rec,
    ):
        rec.set_output("out")
    with pytest.raises(provmark.ConfigError, match=r"model\.name: contains a NUL"):
        pm.record(model=provmark.Model("acme\x00m"))
    with (
        pytest.raises(CaptureError, match=r"tags\.k: contains a NUL"),
        pm.record(model=model, input="hi", tags={"k": "v\x00"}) as rec,
    ):
        rec.set_output("out")
    with pm.record(model=provmark.Model("acme/m"), input="a\x00b", params={"n": 2**53 - 1}) as rec:
        rec.set_output("kept")
    pm.flush()
    (stored,) = pm.store.iter_records()
    payload = json.loads(stored.payload)
    assert payload["params"] == {"n": 2**53 - 1}
    # the snapshot is a rendering (the input is identified by input.sha256): NUL -> U+FFFD
    assert "\x00" not in stored.payload.decode() and "\\u0000" not in stored.payload.decode()
    assert pm.verify("kept").record.record_id == stored.record_id


@pytest.mark.postgres
def test_postgres_refusal_is_dead_lettered_and_the_writer_goes_on(
    pg_url: str, tmp_path: Path
) -> None:
    with provmark.open(pg_url, home=tmp_path / "home", flush_interval=0.01) as pm:
        a, poison, c = (
            make_record("a"),
            make_record("p", actor={"user_id": unreadable_user()}),
            make_record("c"),
        )
        with pytest.raises(RecordsRefused) as info:
            pm.ingest([a, poison, c])
        assert info.value.field == "[1]" and "SQLSTATE 54000" in info.value.reason
        assert info.value.stored == [a["record_id"], c["record_id"]]
        assert pm.store.has([a["record_id"], poison["record_id"], c["record_id"]]) == {
            a["record_id"],
            c["record_id"],
        }
        started = time.monotonic()
        after = make_record("right after")
        assert pm.ingest([after]) == [after["record_id"]]
        assert time.monotonic() - started < 1.0
        (dead,) = pm.dead_letters()
        assert dead.record_id == poison["record_id"] and "54000" in dead.reason
        assert json.loads(dead.record)["record_id"] == poison["record_id"]
        assert pm.dead_letter_count() == 1 and pm.stats()["dead_letters"] == 1
        with pytest.raises(RecordsRefused):  # sent again: refused again, counted
            pm.ingest([poison])
        assert pm.dead_letters()[0].times == 2


def test_sqlite_refusal_is_dead_lettered_and_the_writer_goes_on(tmp_path: Path) -> None:
    with provmark.open(tmp_path / "small.db", home=tmp_path / "home", flush_interval=0.01) as pm:
        # SQLite's own limit on the length of a value, lowered on the store's connection:
        # a real refusal by the engine ("string or blob too big"), not a fake store.
        pm.store._db.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 3000)  # type: ignore[attr-defined]
        big = make_record("big", extra={"note": "x" * 4000})
        a, c = make_record("a"), make_record("c")
        with pytest.raises(RecordsRefused) as info:
            pm.ingest([a, big, c])
        assert "string or blob too big" in info.value.reason
        assert pm.store.count() == 2
        (dead,) = pm.dead_letters()
        assert dead.record_id == big["record_id"] and "too big" in dead.reason
        after = make_record("after")
        started = time.monotonic()
        pm.ingest([after])
        assert time.monotonic() - started < 1.0 and pm.store.count() == 3


def test_dead_letter_table_is_made_on_first_use_and_counts_repeats(pm: provmark.Provmark) -> None:
    store: Any = pm.store
    assert pm.dead_letter_count() == 0 and pm.dead_letters() == []
    assert not deadletters.table_made(store)  # opening and reading never create it
    store.add_dead_letter("id-1", "first reason", json.dumps({"note": "a\x00b"}))
    store.add_dead_letter("id-2", "r" * 5000, "{}")
    store.add_dead_letter("id-1", "second reason", "{}")
    letters = {d.record_id: d for d in pm.dead_letters()}
    assert pm.dead_letter_count() == 2
    assert letters["id-1"].times == 2 and letters["id-1"].reason == "second reason"
    assert len(letters["id-2"].reason) == 1000
    assert pm.dead_letters(limit=1)[0].record_id == "id-1"  # newest first


# ---------------------------------------------------------------- server


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp(f"limits-{request.param}")
    db = None if request.param == "sqlite" else str(request.getfixturevalue("pg_database"))
    srv = start_server(folder, "--no-webhooks", db=db)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def clients(server: Server) -> Iterator[dict[str, httpx.Client]]:
    made = {role: server.client(server.token(role)) for role in ("ingest", "auditor")}
    made["anonymous"] = server.client()
    yield made
    for c in made.values():
        c.close()


def post_raw(c: httpx.Client, text: str) -> httpx.Response:
    return c.post("/v1/records", content=text, headers={"content-type": "application/json"})


def assert_problem(r: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    if field is not None:
        assert body["field"] == field, body
    assert not any(word in r.text for word in INTERNALS), r.text
    return body


def size(c: httpx.Client) -> int:
    r = c.get("/v1/checkpoints/latest")
    return int(r.json()["size"]) if r.status_code == 200 else 0


@pytest.mark.parametrize(
    ("swap", "field"),
    [
        ('"latency_ms": 12.5', '"latency_ms": Infinity'),
        ('"latency_ms": 12.5', '"latency_ms": NaN'),
        ('"n": 1', '"n": 9007199254740993'),
        ('"n": 1', '"n": 1180591620717411303424'),
        ('"name": "acme/summarizer"', '"name": "acme\\u0000summarizer"'),
        ('"name": "acme/summarizer"', '"name": "acme\\ud800"'),
    ],
)
def test_server_refuses_what_it_cannot_store_exactly(
    clients: dict[str, httpx.Client], swap: str, field: str
) -> None:
    record = make_record("exact", usage={"latency_ms": 12.5}, extra={"n": 1}, params={"n": 1})
    text = json.dumps([record]).replace(swap, field)
    assert field in text
    before = size(clients["auditor"])
    body = assert_problem(post_raw(clients["ingest"], text), 422)
    assert body["field"].startswith("[0].") and body["reason"]
    assert clients["auditor"].get(f"/v1/records/{record['record_id']}").status_code == 404
    assert size(clients["auditor"]) == before


def test_server_batch_is_all_or_nothing_and_refuses_duplicate_ids(
    clients: dict[str, httpx.Client],
) -> None:
    a, b = make_record("b1"), make_record("b2")
    inf = json.dumps(make_record("inf", usage={"latency_ms": 1.0})).replace("1.0", "Infinity")
    before = size(clients["auditor"])
    r = post_raw(clients["ingest"], f"[{json.dumps(a)}, {inf}, {json.dumps(b)}]")
    body = assert_problem(r, 422, "[1].usage.latency_ms")
    assert [e["field"] for e in body["errors"]] == ["[1].usage.latency_ms"]
    assert size(clients["auditor"]) == before
    r = clients["ingest"].post("/v1/records", json=[a, b, a])
    body = assert_problem(r, 422, "[2].record_id")
    assert a["record_id"] in body["reason"] and size(clients["auditor"]) == before


def test_a_valid_record_right_after_a_nul_record_is_stored_within_a_second(
    clients: dict[str, httpx.Client],
) -> None:
    nul = make_record("nul", actor={"user_id": "a\x00b"})
    assert_problem(clients["ingest"].post("/v1/records", json=[nul]), 422, "[0].actor.user_id")
    good = make_record("after nul")
    started = time.monotonic()
    r = clients["ingest"].post("/v1/records", json=[good])
    assert r.status_code == 200 and r.json()["stored"] == 1
    assert time.monotonic() - started < 1.0
    assert clients["auditor"].get(f"/v1/records/{good['record_id']}").status_code == 200
    assert clients["anonymous"].get("/readyz").json()["status"] in ("ready", "degraded")


def test_the_remote_client_gets_the_same_answers(server: Server, tmp_path: Path) -> None:
    """The remote client sends what the server's door refuses and keeps the verdict per
    record (``rejected``); the valid records of the batch are stored, nothing hangs."""
    remote = provmark.open(
        server.url, token=server.token("ingest"), journal_dir=tmp_path / "j", retry_max=1.0
    )
    try:
        good = make_record("remote good")
        nan = make_record("remote nan", usage={"latency_ms": math.nan})
        later = make_record("future", generated_at="2999-01-01T00:00:00.000000Z")
        assert remote.ingest([good, nan, later], timeout=20) == [
            good["record_id"],
            nan["record_id"],
            later["record_id"],
        ]
        verdicts = dict(remote.rejected)
        assert verdicts[nan["record_id"]].startswith("[1].usage.latency_ms: nan is not")
        assert "generated_at" in verdicts[later["record_id"]]
        assert remote.pending == 0
    finally:
        remote.close()
    with server.client(server.token("auditor")) as aud:
        assert aud.get(f"/v1/records/{good['record_id']}").status_code == 200
        assert aud.get(f"/v1/records/{nan['record_id']}").status_code == 404


def test_bad_requests_are_4xx_problems_without_internals(
    clients: dict[str, httpx.Client],
) -> None:
    deep = "[" * 10_000 + "]" * 10_000
    assert_problem(post_raw(clients["ingest"], deep), 400, "body")
    deep_object = '[{"extra": ' + '{"a": ' * 10_000 + "1" + "}" * 10_000 + "}]"
    assert_problem(post_raw(clients["ingest"], deep_object), 400)
    lines = '{"a": 1}\n' + deep + "\n"
    r = clients["ingest"].post(
        "/v1/records", content=lines, headers={"content-type": "application/x-ndjson"}
    )
    assert_problem(r, 400, "body.line[2]")
    for path in ("/v1/verify", "/v1/verify/fuzzy", "/v1/disclose"):
        r = clients["auditor"].post(
            path, content=deep, headers={"content-type": "application/json"}
        )
        assert 400 <= r.status_code < 500, (path, r.status_code, r.text[:300])
        assert_problem(r, r.status_code)
    nested = json.dumps(
        [
            make_record(
                "d", extra={"a": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}
            )
        ]
    )
    assert_problem(post_raw(clients["ingest"], nested), 422)
    aud = clients["auditor"]
    one = make_record("for a proof")
    assert clients["ingest"].post("/v1/records", json=[one]).status_code == 200
    r = aud.get(f"/v1/records/{one['record_id']}/proof", params={"tree_size": 9223372036854775808})
    assert_problem(r, 422, "query.tree_size")
    r = aud.get("/v1/checkpoints/consistency", params={"from": 1, "to": 2**64})
    assert_problem(r, 422)
    for since in ("99999999999w", "99999999999999999999999s"):
        r = aud.get("/v1/records", params={"since": since})
        assert_problem(r, 422, "query.since")


def test_security_headers_on_api_answers_and_a_local_docs_page(
    clients: dict[str, httpx.Client],
) -> None:
    for path in ("/healthz", "/v1/records", "/v1/records/nope", "/openapi.json", "/docs"):
        r = clients["auditor"].get(path)
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["x-frame-options"] == "DENY", path
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp, path
    docs = clients["anonymous"].get("/docs")
    assert (
        docs.status_code == 200 and "/v1/records" in docs.text and "/v1/dead-letters" in docs.text
    )
    assert "<script" not in docs.text and "cdn" not in docs.text.lower()
    assert "script-src" not in docs.headers["content-security-policy"]
    ui = clients["anonymous"].get("/")  # the web UI keeps its own policy
    assert "script-src 'self'" in ui.headers["content-security-policy"]
    assert clients["anonymous"].get("/redoc").status_code == 404


@pytest.mark.postgres
def test_server_on_postgres_dead_letters_a_refused_record_and_goes_on(
    tmp_path: Path, pg_url: str
) -> None:
    srv = start_server(tmp_path, "--no-webhooks", db=pg_url)
    try:
        with srv.client(srv.token("ingest")) as ing, srv.client(srv.token("auditor")) as aud:
            a, c = make_record("pg a"), make_record("pg c")
            poison = make_record("pg poison", actor={"user_id": unreadable_user()})
            r = ing.post("/v1/records", json=[a, poison, c])
            body = assert_problem(r, 422, "[1]")
            assert body["type"].endswith("/record-refused") and "54000" in body["reason"]
            assert body["stored"] == [a["record_id"], c["record_id"]]
            assert body["refused"] == [poison["record_id"]]
            after = make_record("pg after")
            started = time.monotonic()
            assert ing.post("/v1/records", json=[after]).json()["stored"] == 1
            assert time.monotonic() - started < 1.0
            assert aud.get(f"/v1/records/{poison['record_id']}").status_code == 404
            ready = aud.get("/readyz")
            assert ready.status_code == 200 and ready.json()["status"] == "degraded"
            assert ready.json()["dead_letters"] == 1
            metrics = aud.get("/metrics").text
            assert "provmark_dead_letters 1.0" in metrics
            letters = aud.get("/v1/dead-letters").json()
            assert letters["count"] == 1
            assert letters["dead_letters"][0]["record_id"] == poison["record_id"]
            dash = aud.get("/v1/ui/dashboard").json()
            assert dash["dead_letters"]["count"] == 1
            assert dash["dead_letters"]["newest"][0]["record_id"] == poison["record_id"]
        started = time.monotonic()
        srv.stop()  # SIGTERM (SIGKILL after 20 s): nothing holds the writer
        assert time.monotonic() - started < 10
    finally:
        srv.stop()


@pytest.mark.postgres
def test_readyz_says_not_ready_while_the_writer_cannot_store(tmp_path: Path, pg_url: str) -> None:
    import threading

    import psycopg

    from provmark.store.migrations import LOCK_CLASS

    srv = start_server(tmp_path, "--no-webhooks", db=pg_url)
    lock = psycopg.connect(pg_url, autocommit=True)
    try:
        with srv.client(srv.token("ingest")) as ing, srv.client() as anon:
            assert ing.post("/v1/records", json=[make_record("first")]).status_code == 200
            # another sequencer holds the log's lock: the writer waits, records pile up
            lock.execute("SELECT pg_advisory_lock(%s, hashtext('public'))", (LOCK_CLASS,))
            answers: list[int] = []
            post = threading.Thread(
                target=lambda: answers.append(
                    ing.post("/v1/records", json=[make_record("waits")]).status_code
                )
            )
            post.start()
            deadline = time.monotonic() + 20
            ready = anon.get("/readyz")
            while ready.status_code == 200 and time.monotonic() < deadline:
                time.sleep(0.2)
                ready = anon.get("/readyz")
            body = assert_problem(ready, 503)
            assert "writer" in body["detail"]
            assert "provmark_writer_stuck_seconds" in anon.get("/metrics").text
            lock.execute("SELECT pg_advisory_unlock(%s, hashtext('public'))", (LOCK_CLASS,))
            post.join(30)
            assert answers == [200]
            assert anon.get("/readyz").json()["status"] == "ready"
    finally:
        lock.close()
        srv.stop()
