"""The queue page: order, grouping, SLA clock, lock holder, capacity banner, polling."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from tests.unit.ui.conftest import Desk, make_record, sign_in


def _row_order(html: str) -> list[str]:
    return [part.split('"', 1)[0] for part in html.split('data-transaction="')[1:]]


def test_queue_lists_cases_in_the_desks_order_grouped_by_card(
    client: TestClient, parts: Desk
) -> None:
    """Cards come by their costliest case, and a card's cases stay together."""
    parts.open(
        make_record(1, card="card-a", score=0.9, amount=50.0),  # loss 45
        make_record(2, card="card-b", score=0.5, amount=400.0),  # loss 200
        make_record(3, card="card-a", score=0.9, amount=500.0),  # loss 450
    )
    sign_in(client, "ann")
    page = client.get("/ui/queue").text
    assert ["tx-0003", "tx-0001", "tx-0002"] == _row_order(page)
    assert "Card card-a · 2 cases" in page


def test_overdue_cases_are_highlighted(client: TestClient, parts: Desk) -> None:
    """A case past its SLA gets the overdue class and says by how much."""
    parts.open(make_record(1))
    parts.clock.advance(timedelta(hours=5))
    sign_in(client, "ann")
    page = client.get("/ui/queue").text
    assert 'class="case overdue"' in page
    assert "overdue by 1 h 1 min" in page


def test_queue_shows_who_holds_a_lock(client: TestClient, parts: Desk) -> None:
    """A case bob has open shows bob as its lock holder to ann."""
    parts.open(make_record(1))
    bob = parts.desk.current_user("bob")
    parts.desk.lock(bob, "tx-0001")
    sign_in(client, "ann")
    page = client.get("/ui/queue").text
    assert 'class="case held"' in page
    assert "<td>bob</td>" in page


def test_capacity_banner_shows_when_inflow_exceeds_capacity(
    client: TestClient, parts: Desk
) -> None:
    """Four review cases today against a capacity of three raise the banner."""
    parts.open(*[make_record(n, card=f"card-{n}") for n in range(1, 5)])
    sign_in(client, "ann")
    assert "Inflow exceeds the team's capacity" in client.get("/ui/queue").text


def test_no_banner_within_capacity(client: TestClient, parts: Desk) -> None:
    """Two cases against a capacity of three show the spare capacity, not the banner."""
    parts.open(make_record(1), make_record(2))
    sign_in(client, "ann")
    page = client.get("/ui/queue").text
    assert "Inflow exceeds" not in page
    assert "(1 to spare)" in page


def test_queue_table_fragment_is_what_htmx_polls(client: TestClient, parts: Desk) -> None:
    """The page polls the table fragment, which is the table alone (no page around it)."""
    parts.open(make_record(1))
    sign_in(client, "ann")
    page = client.get("/ui/queue").text
    fragment = client.get("/ui/queue/table", headers={"HX-Request": "true"})
    assert 'hx-get="/ui/queue/table"' in page
    assert 200 == fragment.status_code
    assert ["tx-0001"] == _row_order(fragment.text)
    assert "<html" not in fragment.text


def test_take_next_case_locks_and_opens_the_top_case(client: TestClient, parts: Desk) -> None:
    """Take the next case goes to the costliest free case, now locked to the analyst."""
    parts.open(make_record(1, amount=10.0), make_record(2, amount=900.0, card="card-2"))
    token = sign_in(client, "ann")
    response = client.post("/ui/queue/next", data={"csrf": token})
    assert "/ui/cases/tx-0002" == response.headers["location"]
    assert "ann" == parts.desk.cases.get("tx-0002").locked_by


def test_take_next_case_with_an_empty_queue_says_so(client: TestClient) -> None:
    """With nothing to take, the queue comes back with a message."""
    token = sign_in(client, "ann")
    response = client.post("/ui/queue/next", data={"csrf": token})
    assert "/ui/queue" == response.headers["location"]
    assert "No case is free" in client.get("/ui/queue").text


def test_a_long_queue_says_how_much_it_shows_and_pages_on(client: TestClient, parts: Desk) -> None:
    """With 60 cards waiting, the first page shows 50 of them, says so, and links to the
    second page, which shows the other 10 and links back."""
    parts.open(*[make_record(n, card=f"card-{n:02d}", amount=1000.0 - n) for n in range(1, 61)])
    sign_in(client, "ann")
    first = client.get("/ui/queue").text
    second = client.get("/ui/queue?page=2").text
    assert (50, 10) == (len(_row_order(first)), len(_row_order(second)))
    assert "Showing cards 1–50 of 60 (60 open cases)" in first
    assert 'href="/ui/queue?page=2"' in first
    assert "Showing cards 51–60 of 60" in second
    assert 'href="/ui/queue?page=1"' in second
    assert 'hx-get="/ui/queue/table?page=2"' in second


def test_a_degraded_decision_is_marked_in_the_queue(client: TestClient, parts: Desk) -> None:
    """A case decided by a fallback (its score a placeholder) is marked degraded."""
    parts.open(make_record(1, source="rules"), make_record(2, card="card-2"))
    sign_in(client, "ann")
    page = client.get("/ui/queue").text
    row = page.split('data-transaction="tx-0001"', 1)[1].split("</tr>", 1)[0]
    other = page.split('data-transaction="tx-0002"', 1)[1].split("</tr>", 1)[0]
    assert ("degraded" in row, "degraded" in other) == (True, False)
