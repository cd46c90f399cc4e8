"""The verify page offers the fuzzy lookup when the exact check fails (real Chromium).

The demo captured its outputs with fingerprints; its edited summary fails the exact
check, and the page then offers to look for the record it came from: the answer names
that record as "derived from", a lead, while the verdict stays "Not verified".
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ui_harness import sign_in


def test_a_failed_exact_check_offers_the_fuzzy_lookup(
    page: Any, tokens: dict[str, str], demo: dict[str, Any]
) -> None:
    from playwright.sync_api import expect

    sign_in(page, tokens["auditor"])
    page.goto("/#/verify")
    original, edited = Path(demo["original"]), Path(demo["edited"])

    page.locator("#v-file").set_input_files(str(original))
    expect(page.locator("#verdict")).to_have_text(re.compile(r"Verified: summary\.txt"))
    expect(page.locator("#fuzzy-offer")).to_have_count(0)  # proven: nothing to offer

    page.locator("#v-file").set_input_files(str(edited))
    expect(page.locator("#verdict")).to_have_text(re.compile(r"Not verified: summary-edited"))
    offer = page.locator("#fuzzy-offer")
    expect(offer).to_contain_text("Edited copy?")
    page.locator("#fuzzy-button").click()
    match = page.locator("#fuzzy-matches li.fuzzy-match").first
    expect(match).to_have_attribute("data-record", demo["record_id"])
    expect(match).to_contain_text("lead, not proof")
    expect(match).to_contain_text("Derived from")
    expect(match).to_contain_text("record signed and logged")
    expect(offer).to_contain_text("A lead, not a proof")
    expect(page.locator("#verdict")).to_have_text(re.compile(r"^✗ Not verified"))  # still

    # pasted text: an edited copy is found; unrelated text is not
    page.get_by_label("Paste the text").fill(edited.read_text().upper())
    page.get_by_role("button", name="Verify text").click()
    expect(page.locator("#verdict")).to_contain_text("Not verified: pasted text")
    page.locator("#fuzzy-button").click()
    expect(page.locator("#fuzzy-matches li.fuzzy-match").first).to_have_attribute(
        "data-record", demo["record_id"]
    )
    page.get_by_label("Paste the text").fill(
        "Quarterly rainfall in the northern valleys rose again, and the river authority "
        "opened two more spillways before the harvest festival began on Saturday."
    )
    page.get_by_role("button", name="Verify text").click()
    expect(page.locator("#verdict")).to_contain_text("Not verified: pasted text")
    page.locator("#fuzzy-button").click()
    expect(page.locator("#fuzzy-none")).to_contain_text("No recorded output resembles")

    # the link opens the record that the lead names
    page.get_by_label("Paste the text").fill(edited.read_text())
    page.get_by_role("button", name="Verify text").click()
    page.locator("#fuzzy-button").click()
    page.locator("#fuzzy-matches li.fuzzy-match a").first.click()
    expect(page).to_have_url(re.compile(r"#/record/"))
