"""The queue page: open cases grouped by card in expected-loss order, with SLA clocks.

The table refreshes itself (htmx polls its fragment), so a case another analyst takes or
closes shows as such without a reload. It is paged by whole cards (``PAGE_CARDS`` a page)
and says which cards of how many it shows. Leads see the escalated cases on a second tab.
A case decided by a fallback is marked degraded: its score is the fallback's placeholder,
not the model's.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from fraudops.api.ui.access import signed_in
from fraudops.api.ui.pages import UiRoute, redirect, render
from fraudops.api.ui.parts import ReviewUi, ui_of
from fraudops.review import User

router = APIRouter(route_class=UiRoute, dependencies=[Depends(signed_in)])

POLL_SECONDS = 15
PAGE_CARDS = 50
Page = Annotated[int, Query(ge=1, le=100_000)]


def _queue(ui: ReviewUi, user: User, escalated: bool, page: int) -> dict[str, Any]:
    desk = ui.desk
    stats = desk.stats(user)
    cards = stats.escalated_cards if escalated else stats.open_cards
    pages = max(1, -(-cards // PAGE_CARDS))
    page = min(page, pages)  # cases closed meanwhile can leave fewer pages
    groups = desk.queue(
        user, escalated=escalated, limit_groups=PAGE_CARDS, offset_groups=(page - 1) * PAGE_CARDS
    )
    return {
        "groups": groups,
        "stats": stats,
        "capacity": desk.capacity(user),
        "escalated": escalated,
        "poll_seconds": POLL_SECONDS,
        "page": page,
        "pages": pages,
        "cards": cards,
        "first_card": (page - 1) * PAGE_CARDS + 1,
        "cases": stats.escalated if escalated else stats.open,
        "table_query": _query(page, escalated),
    }


def _query(page: int, escalated: bool) -> str:
    """The query string of a queue page: none for the first page of open cases."""
    params = ([f"page={page}"] if page > 1 else []) + (["escalated=true"] if escalated else [])
    return "?" + "&".join(params) if params else ""


@router.get("/", name="ui.home")
async def home(request: Request) -> Response:
    """The UI's front door is the queue."""
    return redirect(request, "ui.queue")


@router.get("/queue", name="ui.queue")
async def queue_page(
    request: Request,
    user: Annotated[User, Depends(signed_in)],
    escalated: bool = False,
    page: Page = 1,
) -> Response:
    """The queue: capacity banner, queue figures, and a page of the cases by card."""
    context = await run_in_threadpool(_queue, ui_of(request), user, escalated, page)
    return render(request, "queue.html", context)


@router.get("/queue/table", name="ui.queue_table")
async def queue_table(
    request: Request,
    user: Annotated[User, Depends(signed_in)],
    escalated: bool = False,
    page: Page = 1,
) -> Response:
    """The queue's figures and table alone, for htmx to poll."""
    context = await run_in_threadpool(_queue, ui_of(request), user, escalated, page)
    return render(request, "_queue_table.html", context)


@router.post("/queue/next", name="ui.next_case")
async def next_case(
    request: Request, user: Annotated[User, Depends(signed_in)], escalated: bool = False
) -> Response:
    """Lock the first case nobody holds and open it."""
    ui = ui_of(request)
    case = await run_in_threadpool(ui.desk.next_case, user, escalated=escalated)
    if case is None:
        return redirect(request, "ui.queue", flash="No case is free to take right now.")
    return redirect(request, "ui.case", transaction_id=case.transaction_id)
