"""An analyst's day in a real browser: sign in, open the top case, mark it fraud by keyboard."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Site
from tests.unit.ui.conftest import PASSWORD

pytestmark = pytest.mark.slow


def _sign_in(page: Page, site: Site, username: str) -> None:
    page.goto(f"{site.url}/ui/sign-in")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{site.url}/ui/queue")


def test_analyst_marks_the_top_case_fraud_with_the_keyboard(page: Page, site: Site) -> None:
    """Sign in, open the queue's first case, press f: the case leaves the queue and its
    analyst label is stored."""
    _sign_in(page, site, "ann")
    rows = page.locator("table.queue tr.case")
    expect(rows).to_have_count(3)
    expect(rows.first).to_have_attribute("data-transaction", "tx-0002")

    rows.first.get_by_role("link").click()
    expect(page).to_have_url(f"{site.url}/ui/cases/tx-0002")
    expect(page.locator("#lock")).to_contain_text("Locked to you until")
    page.keyboard.press("f")

    expect(page).to_have_url(f"{site.url}/ui/queue")
    expect(page.locator("#flash")).to_contain_text("tx-0002 confirmed fraud")
    expect(rows).to_have_count(2)
    expect(page.locator('tr[data-transaction="tx-0002"]')).to_have_count(0)
    assert [(True, "analyst")] == site.labels("tx-0002")


def test_a_shortcut_typed_in_the_note_is_text_not_a_verdict(page: Page, site: Site) -> None:
    """Typing "fl" in the note box writes the note; no verdict is given."""
    _sign_in(page, site, "ann")
    page.goto(f"{site.url}/ui/cases/tx-0001")
    page.get_by_label("Note").fill("")
    page.get_by_label("Note").press_sequentially("fl")
    expect(page).to_have_url(f"{site.url}/ui/cases/tx-0001")
    assert [] == site.labels("tx-0001")


def test_analyst_is_denied_the_promotion_page(page: Page, site: Site) -> None:
    """An analyst opening the models page gets 403 and the reason; the menu has no link."""
    _sign_in(page, site, "ann")
    expect(page.get_by_role("link", name="Models")).to_have_count(0)
    response = page.goto(f"{site.url}/ui/models")
    assert response is not None
    assert 403 == response.status
    expect(page.locator("main")).to_contain_text(re.compile("approve_promotion is not allowed"))


def test_a_payment_the_cardholder_disowns_is_labelled_with_the_verdict(
    page: Page, site: Site
) -> None:
    """On tx-0003 (card-a) the analyst ticks the card's earlier tx-0001 as not the
    cardholder's and presses l: the browser sends the tick with the verdict form, so
    tx-0003 is labelled legitimate and tx-0001 fraud."""
    _sign_in(page, site, "ann")
    page.goto(f"{site.url}/ui/cases/tx-0003")
    page.get_by_label("The cardholder disowns tx-0001").check()
    page.keyboard.press("l")

    expect(page).to_have_url(f"{site.url}/ui/queue")
    expect(page.locator("#flash")).to_contain_text("1 earlier payment on the card disowned")
    assert ([(False, "analyst")], [(True, "analyst")]) == (
        site.labels("tx-0003"),
        site.labels("tx-0001"),
    )
