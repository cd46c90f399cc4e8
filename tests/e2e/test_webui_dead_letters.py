"""The dashboard lists the records the store refused (dead letters), in Chromium.

The dead letter is made the way the writer makes one: the store really refuses the
record (SQLite's length limit, lowered on the store's connection), the writer retries,
sets it aside and stores the others. Then a real server serves that store.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from ui_harness import UIServer, sign_in

import provmark
from provmark.errors import RecordsRefused
from provmark.record import new_record_id, now_utc

pytestmark = pytest.mark.e2e
expect = pytest.importorskip("playwright.sync_api").expect


def record(note: str) -> dict[str, Any]:
    return {
        "record_id": new_record_id(),
        "generated_at": now_utc(),
        "model": {"name": "acme/dead-letters"},
        "output": {"sha256": "ab" * 32},
        "extra": {"note": note},
    }


@pytest.fixture(scope="module")
def refused_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[UIServer, str]]:
    folder = tmp_path_factory.mktemp("dead-letters")
    db, home = folder / "provmark.db", folder / "home"
    with provmark.open(db, home=home, flush_interval=0.01) as pm:
        pm.store._db.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 3000)  # type: ignore[attr-defined]
        big = record("x" * 4000)
        with pytest.raises(RecordsRefused):
            pm.ingest([record("kept"), big])
    srv = UIServer(folder=folder, db=db, home=home).start()
    try:
        yield srv, big["record_id"]
    finally:
        srv.stop()


def test_dashboard_lists_dead_letters(browser: Any, refused_server: tuple[UIServer, str]) -> None:
    server, refused_id = refused_server
    context = browser.new_context(viewport={"width": 1366, "height": 860}, base_url=server.url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        sign_in(page, server.token("developer"))
        panel = page.locator("section", has=page.get_by_role("heading", name="Dead letters"))
        expect(panel).to_contain_text(refused_id)
        expect(panel).to_contain_text("string or blob too big")
        expect(panel).to_contain_text("1 record(s) the store refused")
    finally:
        context.close()
    assert not errors, errors
    with server.client(server.token("auditor")) as c:
        assert c.get("/readyz").json()["status"] == "degraded"
