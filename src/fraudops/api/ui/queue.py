"""The queue page: open cases grouped by card in expected-loss order, with SLA clocks.

The table refreshes itself (htmx polls its fragment), so a case another analyst takes or
closes shows as such without a reload. Leads see the escalated cases on a second tab.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from fraudops.api.ui.access import signed_in
from fraudops.api.ui.pages import UiRoute, redirect, render
from fraudops.api.ui.parts import ReviewUi, ui_of
from fraudops.review import User

router = APIRouter(route_class=UiRoute, dependencies=[Depends(signed_in)])

POLL_SECONDS = 15


def _queue(ui: ReviewUi, user: User, escalated: bool) -> dict[str, Any]:
    desk = ui.desk
    return {
        "groups": desk.queue(user, escalated=escalated),
        "stats": desk.stats(user),
        "capacity": desk.capacity(user),
        "escalated": escalated,
        "poll_seconds": POLL_SECONDS,
    }


@router.get("/", name="ui.home")
async def home(request: Request) -> Response:
    """The UI's front door is the queue."""
    return redirect(request, "ui.queue")


@router.get("/queue", name="ui.queue")
async def queue_page(
    request: Request, user: Annotated[User, Depends(signed_in)], escalated: bool = False
) -> Response:
    """The queue: capacity banner, queue figures, and the cases by card."""
    context = await run_in_threadpool(_queue, ui_of(request), user, escalated)
    return render(request, "queue.html", context)


@router.get("/queue/table", name="ui.queue_table")
async def queue_table(
    request: Request, user: Annotated[User, Depends(signed_in)], escalated: bool = False
) -> Response:
    """The queue's figures and table alone, for htmx to poll."""
    context = await run_in_threadpool(_queue, ui_of(request), user, escalated)
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
