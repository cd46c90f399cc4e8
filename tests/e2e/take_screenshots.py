"""The screenshots of docs/img/, taken from the README's demo: `make screenshots`.

Runs ``provmark serve --demo`` (the product command of the README) on a free port,
signs in with the auditor token it prints, and photographs each page of the web UI in
Chromium. The test suite never writes into docs/ (see ``ui_harness.screenshot``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import expect, sync_playwright

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from ui_harness import free_port, screenshot  # noqa: E402

DOCS_IMG = HERE.parents[1] / "docs" / "img"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def start_demo(folder: Path, port: int) -> tuple[subprocess.Popen[bytes], str, Path]:
    log = folder / "serve.log"
    demo = folder / "demo"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "provmark.cli",
            "serve",
            "--demo",
            "--demo-dir",
            str(demo),
            "--port",
            str(port),
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "PROVMARK_HOME": str(folder / "home")},
    )
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit(f"provmark serve --demo exited:\n{log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).is_success:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    found = re.search(r"auditor \(sees everything\):\s+(\S+)", log.read_text())
    if found is None:
        raise SystemExit(f"no auditor token in the demo's output:\n{log.read_text()}")
    return proc, found.group(1), demo


def take(out: Path = DOCS_IMG) -> None:
    with tempfile.TemporaryDirectory(prefix="provmark-shots-") as tmp:
        port = free_port()
        proc, token, demo = start_demo(Path(tmp), port)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                page = browser.new_page(
                    base_url=f"http://127.0.0.1:{port}", viewport={"width": 1280, "height": 900}
                )
                page.goto("/")
                page.get_by_label("API token").fill(token)
                page.get_by_label("Reason for access").fill("screenshots for the docs")
                page.get_by_role("button", name="Sign in").click()
                page.wait_for_selector("#nav:not([hidden])")
                expect(page.locator("svg.chart g.bar").first).to_be_visible()
                screenshot(page, "dashboard.png", out)

                page.goto("/#/search")
                page.get_by_role("button", name="Search", exact=True).click()
                expect(page.locator("table.results tbody tr").first).to_be_visible()
                screenshot(page, "search.png", out)

                summary = demo / "summary.txt"
                page.goto("/#/verify")
                page.locator("#v-file").set_input_files(str(summary))
                expect(page.locator("#verdict")).to_contain_text("Verified")
                screenshot(page, "verify.png", out)
                page.locator("#v-file").set_input_files(str(demo / "summary-edited.txt"))
                expect(page.locator("#verdict")).to_contain_text("Not verified")
                page.get_by_role("button", name="Look for the record it may come from").click()
                expect(page.get_by_text("lead, not proof").first).to_be_visible()
                screenshot(page, "verify-failed.png", out)

                with httpx.Client(
                    base_url=f"http://127.0.0.1:{port}",
                    headers={"authorization": f"Bearer {token}"},
                ) as api:
                    found = api.get(
                        "/v1/records", params={"tag": "step=summary", "limit": 1, "order": "asc"}
                    )
                    record_id = found.json()["records"][0]["record_id"]
                page.goto(f"/#/record/{record_id}")
                expect(page.locator("svg.lineage a.node.root")).to_be_visible()
                expect(page.locator("#browser-verdict")).to_contain_text("No check failed")
                screenshot(page, "record.png", out)

                page.goto("/#/log")
                expect(page.locator("svg.chart circle.point").first).to_be_visible()
                page.get_by_role("button", name="Check consistency").click()
                expect(page.locator("#consistency-verdict")).to_contain_text("Consistent")
                screenshot(page, "log.png", out)

                page.goto("/#/disclosure")
                expect(page.get_by_role("heading", name="AI disclosure")).to_be_visible()
                expect(page.locator("svg.chart").first).to_be_visible()
                screenshot(page, "disclosure.png", out)
                browser.close()
        finally:
            proc.terminate()
            proc.wait(30)
    print(f"screenshots written to {out}")


if __name__ == "__main__":
    take(Path(sys.argv[1]) if len(sys.argv) > 1 else DOCS_IMG)
