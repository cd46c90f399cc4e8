"""The web UI's Disclosure page in Chromium: coverage cards and the per-day chart agree
with GET /v1/disclosure/report; disclosing a file shows its fields and sources."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ui_harness import UIServer, sign_in

expect = pytest.importorskip("playwright.sync_api").expect


def test_disclosure_page(
    page: Any, tokens: dict[str, str], server: UIServer, demo: dict[str, Any], tmp_path: Path
) -> None:
    with server.client(tokens["developer"]) as c:
        report = c.get("/v1/disclosure/report", params={"since": "7d"}).json()
    assert report["outputs_captured"] > 0
    sign_in(page, tokens["developer"])
    page.get_by_role("link", name="Disclosure").click()
    expect(page.get_by_role("heading", name="AI disclosure")).to_be_visible()
    page.get_by_label("Period").select_option("7d")
    captured = page.get_by_role("region", name="Outputs captured")
    expect(captured.locator(".big")).to_have_text(f"{report['outputs_captured']:,}")
    expect(page.get_by_role("region", name="With all SB 942 fields").locator(".big")).to_have_text(
        "—"
        if report["percent_sb942_complete"] is None
        else f"{report['percent_sb942_complete']:g}%"
    )
    days = page.locator("svg.chart.coverage g.day")
    expect(days).to_have_count(len(report["days"]))
    today = report["days"][-1]
    bar = page.locator(f'svg.chart.coverage g.day[data-day="{today["day"]}"] rect.s-captured')
    expect(bar).to_have_count(1 if today["captured"] else 0)
    page.get_by_text("Show the chart as a table").click()
    busy = [d for d in report["days"] if d["captured"] or d["failures"]]
    expect(page.locator("table.coverage-days tbody tr")).to_have_count(len(busy))

    original = Path(demo["original"])
    page.get_by_label("A generated file").set_input_files(str(original))
    result = page.locator("#disclose-result")
    expect(result.locator(".verdict-text")).to_have_text("Verified")
    expect(result.locator("table.disclosure-fields")).to_contain_text("system_name")
    expect(result.locator("table.disclosure-fields")).to_contain_text("record model.name")
    expect(result.locator("table.checks")).to_contain_text("Record signature")

    stranger = tmp_path / "stranger.txt"
    stranger.write_text("text no model here ever wrote")
    page.get_by_label("A generated file").set_input_files(str(stranger))
    expect(result.locator(".verdict-text")).to_have_text("No record states this content")
    expect(result.locator("tr.missing")).to_have_count(6)
