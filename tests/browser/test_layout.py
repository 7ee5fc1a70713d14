"""The pages' layout as Chromium draws it: nothing spills out of its panel or its chart, and
the page never scrolls sideways, at a laptop's width and a wide screen's."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect

from fraudops.review import CaseKind, CaseOpening
from fraudops.types import Reason
from tests.browser.conftest import Site
from tests.unit.ui.conftest import PASSWORD, make_record

pytestmark = pytest.mark.slow

LONG_REASON = "distance_from_card_terminals_30d"
WIDTHS = (1400, 1024)

_SPILLS = """() => [...document.querySelectorAll('.case-grid > section')]
    .filter(s => s.scrollWidth > s.clientWidth + 1)
    .map(s => s.querySelector('h2').textContent)"""
_OVERLAPS = """() => {
    const boxes = [...document.querySelectorAll('.case-grid > section')]
        .map(s => s.getBoundingClientRect());
    return boxes.some((a, i) => boxes.some((b, j) => i < j
        && a.left < b.right - 1 && b.left < a.right - 1
        && a.top < b.bottom - 1 && b.top < a.bottom - 1));
}"""
_CUT_TEXT = """() => [...document.querySelectorAll('svg.chart')].flatMap(svg => {
    const width = svg.viewBox.baseVal.width;
    return [...svg.querySelectorAll('text')]
        .filter(t => { const b = t.getBBox(); return b.x < -0.5 || b.x + b.width > width + 0.5; })
        .map(t => t.textContent);
})"""

_CROWDED_TICKS = """() => [...document.querySelectorAll('svg.chart')].flatMap(svg => {
    const boxes = [...svg.querySelectorAll('text.tick')].map(t => t.getBBox())
        .filter(b => b.y > svg.viewBox.baseVal.height - 20).sort((a, b) => a.x - b.x);
    return boxes.slice(1).filter((b, i) => boxes[i].x + boxes[i].width > b.x).map(b => b.x);
})"""


def _sign_in(page: Page, site: Site, username: str) -> None:
    page.goto(f"{site.url}/ui/sign-in")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{site.url}/ui/queue")


def _busy_case(site: Site) -> str:
    """A case on card-a with a long reason code, after ten decisions on the card made by
    the static fallback (the widest history rows); its transaction id."""
    now = datetime.now(UTC)
    history = [
        make_record(
            100 + n,
            card="card-a",
            terminal=f"terminal-{n:05d}",
            amount=12345.67,
            source="static",
            decided_at=now - timedelta(minutes=30 + n),
        )
        for n in range(10)
    ]
    record = make_record(99, card="card-a", decided_at=now - timedelta(minutes=1))
    reasons = (Reason(LONG_REASON, 0.21), Reason("amount_to_card_avg_30d", 6.05))
    record = dataclasses.replace(
        record, decision=dataclasses.replace(record.decision, reasons=reasons)
    )
    site.decisions.write([*history, record])
    opening = CaseOpening(record, CaseKind.REVIEW, now + timedelta(hours=4))
    site.desk.cases.open_cases([opening], now)
    return record.transaction_id


@pytest.mark.parametrize("width", WIDTHS)
def test_the_case_page_keeps_its_tables_and_chart_inside_their_panels(
    page: Page, site: Site, width: int
) -> None:
    """With a wide card history and a long reason code: no panel's content spills past
    it, no two panels overlap, no chart label is cut, and the page does not scroll
    sideways."""
    case = _busy_case(site)
    page.set_viewport_size({"width": width, "height": 900})
    _sign_in(page, site, "ann")
    page.goto(f"{site.url}/ui/cases/{case}")
    expect(page.locator("svg.chart text", has_text=LONG_REASON)).to_have_count(1)
    assert ([], False, [], True) == (
        page.evaluate(_SPILLS),
        page.evaluate(_OVERLAPS),
        page.evaluate(_CUT_TEXT),
        page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"),
    )


@pytest.mark.parametrize("window", ["24h", "7d", "30d"])
def test_the_dashboards_tick_labels_stay_inside_their_charts(
    page: Page, site: Site, window: str
) -> None:
    """Every label of every dashboard chart is drawn inside the chart, the last period's
    included, and no two period labels touch."""
    page.set_viewport_size({"width": 1400, "height": 900})
    _sign_in(page, site, "ann")
    page.goto(f"{site.url}/ui/dashboard?window={window}")
    assert ([], []) == (page.evaluate(_CUT_TEXT), page.evaluate(_CROWDED_TICKS))
