"""How the UI is served: its own files only, a strict Content-Security-Policy, ETags;
and a ``--no-auth`` server that starts from an empty store, in Chromium.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from ui_harness import UIServer

import provmark
from provmark.record import new_record_id, now_utc

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
)
expect = sync_api.expect


def test_ui_is_served_without_outside_resources(server: UIServer) -> None:
    with httpx.Client(base_url=server.url) as c:
        index = c.get("/")
        assert index.status_code == 200 and "text/html" in index.headers["content-type"]
        csp = index.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp
        assert "http" not in re.sub(r"https?://127\.0\.0\.1[^\"']*", "", index.text)
        assert 'href="/docs"' in index.text  # the API reference, as the placeholder had
        assets = re.findall(r'(?:src|href)="(/ui/[^"]+)"', index.text)
        assert "/ui/main.js" in assets and "/ui/style.css" in assets
        js = c.get("/ui/main.js")
        assert js.headers["content-type"].startswith("text/javascript")
        assert (
            c.get("/ui/main.js", headers={"if-none-match": js.headers["etag"]}).status_code == 304
        )
        todo, names = ["main.js"], {"main.js"}
        while todo:
            name = todo.pop()
            body = c.get(f"/ui/{name}").text
            for found in re.findall(r"from '\./([a-z_]+\.js)'", body):
                if found not in names:
                    names.add(found)
                    todo.append(found)
            urls = set(re.findall(r"https?://[^\s'\"`)]+", body)) - {"http://www.w3.org/2000/svg"}
            assert not urls, f"{name} names outside addresses: {urls}"
        assert {"page_record.js", "lineage.js", "merkle.js", "browser_verify.js"} <= names
        css = c.get("/ui/style.css").text
        assert "url(" not in css and "@import" not in css
        assert c.get("/ui/nothing.js").status_code == 404
        assert c.get("/ui", follow_redirects=False).headers["location"] == "/"


@pytest.mark.e2e
def test_no_auth_server_from_an_empty_store(browser: Any, tmp_path: Path) -> None:
    """--no-auth: no sign-in; every page copes with an empty log, then with one record."""
    with provmark.open(tmp_path / "provmark.db", home=tmp_path / "home"):
        pass
    srv = UIServer(folder=tmp_path, db=tmp_path / "provmark.db", home=tmp_path / "home", auth=False)
    srv.start()
    context = browser.new_context(base_url=srv.url, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto("/")
        expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
        expect(page.locator("#banner")).to_contain_text("Authentication is off")
        expect(page.locator("#who .role")).to_have_text("local")
        expect(page.get_by_role("region", name="Latest checkpoint")).to_contain_text("empty")
        page.goto("/#/search")
        expect(page.locator("#results-heading")).to_have_text("No records match these filters.")
        page.goto("/#/log")
        expect(page.locator("main")).to_contain_text("The log is empty")
        page.goto("/#/record/pm-20260101-abcdef")
        expect(page.get_by_role("alert")).to_contain_text("No record")

        text = "one generated sentence"
        with httpx.Client(base_url=srv.url) as c:
            stored = c.post(
                "/v1/records",
                json=[
                    {
                        "record_id": new_record_id(),
                        "generated_at": now_utc(),
                        "operation": "chat",
                        "model": {"name": "acme/local"},
                        "output": {"sha256": hashlib.sha256(text.encode()).hexdigest()},
                    }
                ],
            )
            assert stored.status_code == 200, stored.text
        page.goto("/#/dashboard")
        expect(page.locator("table.totals").first).to_contain_text("acme/local")
        page.goto("/#/log")
        expect(page.locator("main")).to_contain_text("Only one checkpoint so far")
        page.get_by_role("button", name="Check consistency").click()
        expect(page.locator("#consistency-verdict")).to_contain_text("Consistent")
        page.goto("/#/verify")
        page.get_by_label("Paste the text").fill(text)
        page.get_by_role("button", name="Verify text").click()
        expect(page.locator("#verdict")).to_contain_text("Verified")
        assert not errors, errors
    finally:
        context.close()
        srv.stop()
