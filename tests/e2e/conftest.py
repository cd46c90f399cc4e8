"""Fixtures of the web UI tests: one demo store and server per session, Chromium pages.

The browser is Debian's Chromium (``/usr/bin/chromium``, package ``chromium``) driven by
Playwright; no browser is ever downloaded. Every page records the requests it makes,
and a test fails if one went anywhere but the server under test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ui_harness import UIServer, build_store

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
LAPTOP = {"width": 1366, "height": 860}


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build_store(tmp_path_factory.mktemp("webui"))


@pytest.fixture(scope="session")
def server(demo: dict[str, Any]) -> Iterator[UIServer]:
    srv = UIServer(folder=Path(demo["db"]).parent, db=Path(demo["db"]), home=Path(demo["home"]))
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def tokens(server: UIServer) -> dict[str, str]:
    return {role: server.token(role) for role in ("ingest", "developer", "auditor", "admin")}


# Per module, not per session: Playwright's sync API keeps an asyncio loop marked running
# on the main thread while it is open, so a session-wide browser broke every later test
# that calls asyncio.run() (async capture, integrations, NATS) when the whole suite runs.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
    )
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any, server: UIServer) -> Iterator[Any]:
    context = browser.new_context(viewport=LAPTOP, accept_downloads=True, base_url=server.url)
    context.set_default_timeout(15_000)
    pg = context.new_page()
    requests: list[str] = []
    errors: list[str] = []
    pg.on("request", lambda r: requests.append(r.url))
    pg.on("pageerror", lambda e: errors.append(str(e)))
    try:
        yield pg
    finally:
        context.close()
    elsewhere = [u for u in requests if not u.startswith((server.url + "/", "data:", "blob:"))]
    assert not elsewhere, f"the UI fetched from outside the server: {elsewhere}"
    assert not errors, f"JavaScript errors on the page: {errors}"
