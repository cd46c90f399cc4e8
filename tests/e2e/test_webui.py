"""The web UI end to end, in headless Chromium: sign in, dashboard, search, record detail
with its lineage graph and exports, verify (original passes, edited copy fails with the
reason, C2PA manifests shown), the log with a consistency check, the developer's
sanitized view, keyboard use. Each page is rendered to a screenshot, kept only when
PROVMARK_SCREENSHOTS names a folder (docs/img/ comes from `make screenshots`).
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
from ui_harness import PII, UIServer, change_one_pixel, screenshot, sign_in

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
)
expect = sync_api.expect

pytestmark = pytest.mark.e2e


def nav(page: Any, name: str) -> Any:
    return page.get_by_role("navigation", name="Main").get_by_role("link", name=name)


def slug(record_id: str) -> str:
    from provmark.record import slug_for

    return slug_for(record_id)


def test_sign_in_refuses_bad_tokens(page: Any, tokens: dict[str, str]) -> None:
    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_label("API token")).to_be_focused()
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Enter an API token")

    page.get_by_label("API token").fill("pmk_000000000000_not-a-real-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("unknown or was revoked")
    expect(page.locator("#nav")).to_be_hidden()

    page.get_by_label("API token").fill(tokens["ingest"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("ingest token: it may only submit records")

    page.get_by_label("API token").fill(tokens["auditor"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
    expect(page.locator("#who .role")).to_have_text("auditor")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_dashboard(page: Any, tokens: dict[str, str], server: UIServer) -> None:
    sign_in(page, tokens["auditor"], reason="e2e case 42")
    expect(page.locator("#banner")).to_contain_text("e2e case 42")
    expect(page.locator("svg.chart g.bar")).to_have_count(60)
    with server.client(tokens["auditor"]) as c:
        data = c.get("/v1/ui/dashboard", params={"window": "1h"}).json()
    assert data["records"] == sum(s["count"] for s in data["series"]) > 200
    by_model = page.locator("table.totals").first
    expect(by_model).to_contain_text("provmark/markov-demo 1.0")
    expect(by_model.locator("tr", has_text="provmark/markov-demo")).to_contain_text("25")
    expect(by_model).to_contain_text("acme/summarizer 3.2")
    expect(page.get_by_role("region", name="Latest checkpoint")).to_contain_text(
        f"size {data['checkpoint']['size']}"
    )
    failed = page.locator("table.failures tr", has_text="Failed generations")
    expect(failed.locator("td.num")).to_have_text(str(data["failures"]["error_records"]))
    assert data["failures"]["error_records"] > 0
    screenshot(page, "dashboard.png")

    page.get_by_label("Time window").select_option("24h")
    expect(page.locator("svg.chart g.bar")).to_have_count(96)
    assert "window=24h" in page.url

    by_model.get_by_role("link", name="acme/classifier 1.4").click()
    expect(page.get_by_role("heading", name="Search records")).to_be_visible()
    expect(page.get_by_label("Model", exact=True)).to_have_value("acme/classifier")
    rows = page.locator("table.results tbody tr")
    expect(rows.first).to_contain_text("acme/classifier 1.4")


def test_search_paginates_and_opens_a_record(
    page: Any, tokens: dict[str, str], demo: dict[str, Any]
) -> None:
    sign_in(page, tokens["auditor"])
    nav(page, "Search").click()
    page.get_by_label("Model", exact=True).fill("provmark/markov-demo")
    page.get_by_label("Rows per page").select_option("10")
    page.get_by_role("button", name="Search", exact=True).click()
    rows = page.locator("table.results tbody tr")
    expect(rows).to_have_count(10)
    expect(page.locator("#results-heading")).to_have_text("Records 1–10")
    expect(page.locator("#results-heading")).to_be_focused()
    screenshot(page, "search.png")
    first_page = rows.first.get_attribute("data-id")

    page.get_by_role("button", name="Next page").click()
    expect(page.locator("#results-heading")).to_have_text("Records 11–20")
    assert rows.first.get_attribute("data-id") != first_page
    page.get_by_role("button", name="Next page").click()
    expect(page.locator("#results-heading")).to_have_text("Records 21–25 (last page)")
    expect(rows).to_have_count(5)
    page.go_back()
    expect(page.locator("#results-heading")).to_have_text("Records 11–20")
    page.get_by_role("button", name="Previous page").click()
    expect(page.locator("#results-heading")).to_have_text("Records 1–10")

    page.get_by_role("button", name="Clear").click()
    page.get_by_label("Tags").fill("app=board-pack")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(rows).to_have_count(3)

    page.get_by_label("Output SHA-256").fill("not-a-hash")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("SHA-256")
    expect(page.get_by_label("Output SHA-256")).to_have_attribute("aria-invalid", "true")

    page.get_by_role("button", name="Clear").click()
    page.get_by_label("Or hash a file").set_input_files(str(demo["original"]))
    expect(page.get_by_label("Output SHA-256")).to_have_value(re.compile("^[0-9a-f]{64}$"))
    page.get_by_role("button", name="Search", exact=True).click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-id", demo["record_id"])

    page.get_by_role("button", name="Clear").click()
    page.get_by_label("Record id or slug").fill(slug(demo["report"]))
    page.get_by_role("button", name="Search", exact=True).click()
    expect(rows).to_have_count(1)
    rows.first.get_by_role("link", name=slug(demo["report"])).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(slug(demo["report"]))


def test_record_detail_lineage_checks_and_exports(
    page: Any, tokens: dict[str, str], demo: dict[str, Any], tmp_path: Path
) -> None:
    sign_in(page, tokens["auditor"])
    page.goto(f"/#/record/{demo['report']}")
    expect(page.get_by_role("heading", level=1)).to_contain_text(slug(demo["report"]))

    # the lineage graph: two parent records and an external input, then two descendants
    graph = page.locator("svg.lineage")
    expect(graph.locator("a.node")).to_have_count(5)
    expect(graph.locator("g.node.external")).to_have_count(1)
    expect(graph.locator("path.edge")).to_have_count(5)
    root = graph.locator("a.node.root")
    expect(root).to_have_attribute("aria-current", "page")
    expect(graph.locator("a.node.ancestor")).to_have_count(2)
    expect(graph.locator("a.node.descendant")).to_have_count(2)
    expect(page.locator(".lineage-figure figcaption")).to_contain_text("the whole log")

    # integrity: by the server, and recomputed in this browser (leaf hash, signatures, proof)
    expect(page.locator("#server-verdict")).to_contain_text("Intact")
    expect(page.locator("#browser-verdict")).to_contain_text("No check failed")
    local = page.locator("table.checks").nth(1)
    expect(local.locator("tbody tr")).to_have_count(4)
    expect(local.locator(".badge.ok")).to_have_count(4)

    # every field, with hashes in full
    fields = page.locator("section.fields")
    expect(fields.locator("tr[data-field='input.snapshot']")).to_contain_text("Combine the two")
    expect(fields.locator("tr[data-field='output.sha256'] code.hash")).to_have_text(
        re.compile("^[0-9a-f]{64}$")
    )
    expect(fields.locator("tr[data-field='parents[2]']")).to_contain_text("external input")
    expect(fields.locator("tr[data-field='log.leaf_hash']")).to_contain_text("hex:")
    screenshot(page, "record.png")

    # exports download as files
    for fmt, suffix in [
        ("bundle", ".provmark.json"),
        ("prov-json", ".prov.json"),
        ("in-toto", ".intoto.jsonl"),
        ("openlineage", ".openlineage.jsonl"),
        ("prov-o", ".prov.ttl"),
    ]:
        with page.expect_download() as info:
            page.locator(f"button.download[data-format='{fmt}']").click()
        download = info.value
        assert download.suggested_filename == slug(demo["report"]) + suffix
        target = tmp_path / download.suggested_filename
        download.save_as(target)
        text = target.read_text()
        if suffix.endswith(".json"):
            json.loads(text)
        elif suffix.endswith(".jsonl"):
            lines = [json.loads(line) for line in text.splitlines()]
            assert len(lines) >= 1
        else:
            assert "prov:" in text
        if fmt == "bundle":
            assert demo["report"] in text
    expect(page.locator("section[aria-labelledby='panel-exports'] .message.ok")).to_contain_text(
        "Downloaded"
    )

    # a demo record: the capture kept a redacted snapshot and encrypted the original,
    # which the auditor's view shows decrypted; the page says where view and bytes differ
    page.goto(f"/#/record/{demo['record_id']}")
    expect(page.locator("#browser-verdict")).to_contain_text("No check failed")
    expect(page.locator("#view-differs")).to_contain_text("input.snapshot")
    expect(page.locator("tr[data-field='input.snapshot']")).to_contain_text("alice@example.com")
    expect(page.locator("#signed-bytes pre")).to_contain_text("[EMAIL:")
    page.go_back()

    # follow the graph with the keyboard: a child record opens
    child = graph.locator(f"a.node[data-id='{demo['translation']}']")
    child.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_contain_text(slug(demo["translation"]))
    expect(page.locator("svg.lineage a.node.root")).to_have_attribute(
        "data-id", demo["translation"]
    )


def test_verify_original_passes_edited_fails(
    page: Any, tokens: dict[str, str], demo: dict[str, Any]
) -> None:
    sign_in(page, tokens["auditor"])
    nav(page, "Verify").click()
    original, edited = Path(demo["original"]), Path(demo["edited"])

    page.locator("#v-file").set_input_files(str(original))
    verdict = page.locator("#verdict")
    expect(verdict).to_have_text(re.compile(r"Verified: summary\.txt"))
    expect(verdict).to_be_focused()
    checks = page.locator("table.checks").first
    expect(checks.locator(".badge.ok")).to_have_count(5)
    expect(page.locator(".record-link")).to_contain_text("provmark/markov-demo 1.0")
    screenshot(page, "verify.png")

    page.locator("#v-file").set_input_files(str(edited))
    expect(verdict).to_have_text(re.compile(r"Not verified: summary-edited\.txt"))
    expect(page.locator("#fail-reason")).to_contain_text("Failed check: output_hash")
    expect(page.locator("#fail-reason")).to_contain_text("no record for this content")
    row = checks.locator("tr[data-check='output_hash']")
    expect(row).to_contain_text("fail")
    expect(checks.locator("tr[data-check='record_signature']")).to_contain_text("not run")
    screenshot(page, "verify-failed.png")

    # pasted text, and a file dropped on the drop zone
    page.get_by_label("Paste the text").fill(original.read_text())
    page.get_by_role("button", name="Verify text").click()
    expect(verdict).to_contain_text("Verified: pasted text")
    page.get_by_label("Paste the text").fill(edited.read_text())
    page.get_by_role("button", name="Verify text").click()
    expect(verdict).to_contain_text("Not verified: pasted text")

    dropped = page.evaluate_handle(
        """(text) => { const dt = new DataTransfer();
             dt.items.add(new File([text], 'dropped.txt', {type: 'text/plain'})); return dt; }""",
        original.read_text(),
    )
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": dropped})
    expect(verdict).to_have_text(re.compile(r"Verified: dropped\.txt"))


def test_verify_c2pa_marked_image_shows_manifest(
    page: Any, tokens: dict[str, str], demo: dict[str, Any], tmp_path: Path
) -> None:
    if demo["marked"] is None:
        pytest.skip("c2pa-python is not installed (pip install c2pa-python)")
    sign_in(page, tokens["auditor"])
    page.goto("/#/verify")
    page.locator("#v-file").set_input_files(str(demo["marked"]))
    verdict = page.locator("#verdict")
    expect(verdict).to_have_text(re.compile(r"Verified: painting-marked\.png"))
    expect(page.locator("#verify-result")).to_contain_text("C2PA manifest was added")
    manifest = page.locator("#c2pa-manifest")
    expect(manifest).to_contain_text("Valid")
    expect(manifest).to_contain_text("c2pa.created")
    expect(manifest).to_contain_text(demo["image"])
    expect(manifest).to_contain_text("AI generated")

    tampered = tmp_path / "painting-tampered.png"
    tampered.write_bytes(change_one_pixel(Path(demo["marked"]).read_bytes()))
    page.locator("#v-file").set_input_files(str(tampered))
    expect(verdict).to_have_text(re.compile(r"Not verified: painting-tampered\.png"))
    c2pa_checks = page.locator("table.checks").nth(1)
    expect(c2pa_checks.locator("tr[data-check='c2pa_manifest']")).to_contain_text("fail")
    expect(manifest).to_contain_text("Invalid")


def test_verify_forged_c2pa_image_names_the_untrusted_signer(
    page: Any, tokens: dict[str, str], demo: dict[str, Any], tmp_path: Path
) -> None:
    """provmark's assertions copied onto other pixels, signed by someone else: not verified."""
    if demo["marked"] is None:
        pytest.skip("c2pa-python is not installed (pip install c2pa-python)")
    import provmark
    from provmark.export.c2pa import mark
    from provmark.export.c2pa_certs import make_dev_cert

    with provmark.open(demo["db"], home=demo["home"]) as pm:
        stored = pm.store.get(demo["image"])
    assert stored is not None
    mallory = make_dev_cert(organization="mallory inc", common_name="mallory signer")
    other, forged = tmp_path / "other.png", tmp_path / "forged.png"
    other.write_bytes(change_one_pixel(Path(demo["marked"]).with_name("painting.png").read_bytes()))
    mark(other, forged, stored, mallory.chain_pem, mallory.key_pem, check_output=False)
    sign_in(page, tokens["auditor"])
    page.goto("/#/verify")
    page.locator("#v-file").set_input_files(str(forged))
    expect(page.locator("#verdict")).to_have_text(re.compile(r"Not verified: forged\.png"))
    row = page.locator("table.checks").nth(1).locator("tr[data-check='c2pa_binding']")
    expect(row).to_contain_text("fail")
    expect(row).to_contain_text("mallory signer")


def test_log_page_checks_consistency(page: Any, tokens: dict[str, str], server: UIServer) -> None:
    sign_in(page, tokens["auditor"])
    nav(page, "Log").click()
    expect(page.get_by_role("heading", name="Transparency log")).to_be_visible()
    latest = page.locator("#latest-checkpoint")
    expect(latest.locator(".badge.ok")).to_have_count(1)
    with server.client(tokens["auditor"]) as c:
        sizes = [cp["size"] for cp in c.get("/v1/ui/checkpoints").json()["checkpoints"]]
    expect(page.locator("svg.chart circle.point")).to_have_count(len(sizes))

    page.get_by_label("Older size").select_option(str(min(sizes)))
    page.get_by_label("Newer size").select_option(str(max(sizes)))
    page.get_by_role("button", name="Check consistency").click()
    expect(page.locator("#consistency-verdict")).to_contain_text("Consistent")
    result = page.locator("#consistency-result table.checks")
    expect(result.locator(".badge.ok")).to_have_count(3)
    screenshot(page, "log.png")

    page.get_by_label("Older size").select_option(str(max(sizes)))
    page.get_by_label("Newer size").select_option(str(min(sizes)))
    page.get_by_role("button", name="Check consistency").click()
    expect(page.get_by_role("alert")).to_contain_text("must not be larger")


def test_browser_checks_catch_tampering(
    page: Any, tokens: dict[str, str], demo: dict[str, Any]
) -> None:
    """The in-browser verifier (SHA-256, RFC 9162 proofs, note signatures) says no to forgeries."""
    sign_in(page, tokens["auditor"])
    script = (Path(__file__).parent / "tamper_checks.js").read_text()
    out = page.evaluate(script, [tokens["auditor"], demo["record_id"]])
    assert all(out["digests"])
    assert out["good"] is True and out["bad"] is False
    assert out["inc"] is True and out["wrongLeaf"] is False and out["wrongIndex"] is False
    assert out["note"] is True and out["forged"] is False, out["forgedReason"]


def test_developer_sees_no_pii(
    page: Any, tokens: dict[str, str], demo: dict[str, Any], server: UIServer
) -> None:
    def no_pii() -> None:
        html = page.content()
        leaked = [p for p in PII if p in html]
        assert not leaked, f"PII on {page.url}: {leaked}"

    sign_in(page, tokens["developer"])
    expect(page.locator("#banner")).to_contain_text("Sanitized view")
    expect(page.locator("#who .role")).to_have_text("developer")
    page.wait_for_selector("svg.chart")
    no_pii()

    page.goto("/#/search?model=provmark%2Fmarkov-demo&limit=100")
    rows = page.locator("table.results tbody tr")
    expect(rows).to_have_count(25)
    expect(rows.first.locator("td.actor")).to_contain_text("hmac-sha256:")
    no_pii()
    page.goto("/#/search?limit=100")
    expect(rows).to_have_count(100)
    no_pii()

    with server.client(tokens["developer"]) as c:
        errors = c.get("/v1/records", params={"status": "error", "limit": 50}).json()["records"]
        # one of the history, ingested with an e-mail in its error message (the demo's own
        # captures are redacted before signing: their view has nothing left to change)
        failed = next(r for r in errors if r["model"]["name"].startswith("acme/"))
        changed = {
            rid: c.get(f"/v1/ui/records/{rid}/checks").json()["sanitized_fields"]
            for rid in (demo["record_id"], demo["report"], failed["record_id"])
        }
    assert all("actor.user_id" in fields for fields in changed.values())
    assert "error.message" in changed[failed["record_id"]]
    for record_id, fields in changed.items():
        page.goto(f"/#/record/{record_id}")
        expect(page.locator("#view-badge")).to_have_text("sanitized view")
        for field in fields:
            expect(page.locator(f"tr[data-field='{field}']")).to_contain_text(
                "changed in the sanitized view"
            )
        expect(page.locator("tr[data-field='actor.user_id'] code.hash")).to_contain_text(
            "hmac-sha256:"
        )
        expect(page.locator("#server-verdict")).to_contain_text("Intact")
        expect(page.locator("svg.lineage a.node.root")).to_be_visible()
        expect(page.locator("button.download").first).to_be_disabled()
        expect(page.locator("#exports-why")).to_contain_text("Ask an auditor")
        expect(page.locator("table.checks").nth(1)).to_contain_text("your role may not read")
        no_pii()

    page.goto("/#/verify")
    page.locator("#v-file").set_input_files(str(demo["original"]))
    expect(page.locator("#verdict")).to_contain_text("Verified")
    expect(page.locator(".record-link")).to_contain_text("hmac-sha256:")
    no_pii()


def test_keyboard_and_labels(page: Any, tokens: dict[str, str], demo: dict[str, Any]) -> None:
    page.goto("/")
    expect(page.get_by_label("API token")).to_be_focused()
    page.keyboard.type(tokens["auditor"])
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_focused()

    skip = page.get_by_role("link", name="Skip to content")
    for _ in range(10):  # backwards from the heading, through the header, to the skip link
        page.keyboard.press("Shift+Tab")
        if page.evaluate("document.activeElement.className") == "skip":
            break
    expect(skip).to_be_focused()
    for _ in range(3):  # the logo, Dashboard, Search
        page.keyboard.press("Tab")
    expect(nav(page, "Search")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Search records")).to_be_focused()
    expect(nav(page, "Search")).to_have_attribute("aria-current", "page")

    unlabelled_js = """() => [...document.querySelectorAll('input, select, textarea, button')]
        .filter((el) => el.type !== 'hidden')
        .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                        && !(el.tagName === 'BUTTON' && el.textContent.trim()))
        .map((el) => el.outerHTML.slice(0, 80))"""
    for where in ("#/dashboard", "#/search", f"#/record/{demo['report']}", "#/verify", "#/log"):
        page.goto("/" + where)
        page.wait_for_selector("main h1")
        page.wait_for_load_state("networkidle")
        assert page.evaluate(unlabelled_js) == [], where


def test_sign_in_page_loads_without_a_401(browser: Any, server: UIServer) -> None:
    """Opening the page without a token asks only whether one is needed."""
    context = browser.new_context(base_url=server.url)
    try:
        page = context.new_page()
        answers: list[tuple[str, int]] = []
        page.on("response", lambda r: answers.append((r.url, r.status)))
        page.goto("/")
        expect(page.get_by_label("API token")).to_be_visible()
        assert not [a for a in answers if a[1] >= 400], answers
        assert any(url.endswith("/v1/ui/config") for url, _ in answers)
    finally:
        context.close()


def test_narrow_dashboard_chart_text_stays_readable(
    browser: Any, server: UIServer, tokens: dict[str, str]
) -> None:
    """At 420 px the chart is drawn at its shown width: tick labels keep their 12 px."""
    context = browser.new_context(base_url=server.url, viewport={"width": 420, "height": 900})
    try:
        page = context.new_page()
        sign_in(page, tokens["auditor"])
        chart = page.locator("svg.chart").first
        expect(chart).to_be_visible()
        tick = chart.locator("text.tick").first
        height = tick.evaluate("(t) => t.getBoundingClientRect().height")
        assert height >= 11, f"tick text is {height:.1f} px high"
        labels = chart.locator("text.tick").all_inner_texts()
        boxes = chart.locator("text.tick").evaluate_all(
            "(ts) => ts.map((t) => { const r = t.getBoundingClientRect();"
            " return [r.left, r.right, r.top]; })"
        )
        bottom = max(b[2] for b in boxes)
        row = sorted(b for b in boxes if b[2] == bottom)  # the time axis: no overlaps
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(row)), labels
    finally:
        context.close()
