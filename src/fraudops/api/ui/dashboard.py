"""The dashboard: decisions by action and by source over time, the degraded rate, the queue's
depth and age, the verdict mix and review precision, each chart with a one-line caption."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from fraudops.api.ui import charts
from fraudops.api.ui.access import signed_in
from fraudops.api.ui.figures import WINDOWS, DashboardFigures
from fraudops.api.ui.pages import UiRoute, render
from fraudops.api.ui.parts import ReviewUi, ui_of
from fraudops.errors import InputError
from fraudops.review import QueueStats, User

router = APIRouter(route_class=UiRoute, dependencies=[Depends(signed_in)])

_ACTIONS = ("approve", "review", "decline")


def period_labels(figures: DashboardFigures) -> tuple[list[str], int]:
    """Each bar's label, and how often to print one so they do not overlap."""
    if figures.period < timedelta(hours=6):
        fmt = "%H:%M"
    elif figures.period < timedelta(days=1):
        fmt = "%d %b %Hh"
    else:
        fmt = "%d %b"
    labels = [period.strftime(fmt) for period in figures.periods]
    return labels, max(1, len(labels) // 8)


def charts_of(figures: DashboardFigures) -> dict[str, Any]:
    """The dashboard's SVG charts for ``figures``."""
    labels, every = period_labels(figures)
    actions = {a: figures.by_action[a] for a in _ACTIONS if a in figures.by_action}
    actions.update({a: v for a, v in figures.by_action.items() if a not in actions})
    sources = dict(sorted(figures.by_source.items(), key=lambda item: -sum(item[1])))
    verdicts = [(v, figures.verdicts.get(v, 0)) for v in ("fraud", "legitimate", "escalate")]
    return {
        "by_action": charts.stacked_bars(
            labels,
            actions,
            charts.colours_for(list(actions), charts.ACTION_COLOURS),
            title="Decisions by action per period",
            label_every=every,
        ),
        "by_source": charts.stacked_bars(
            labels,
            sources,
            charts.colours_for(list(sources), {"model": charts.PALETTE[0]}),
            title="Decisions by source per period",
            label_every=every,
        ),
        "degraded": charts.rate_bars(
            labels,
            figures.degraded_rates,
            title="Share of decisions made in degraded mode per period",
            label_every=every,
        ),
        "verdicts": charts.hbars(
            verdicts, charts.VERDICT_COLOURS, title="Verdicts on review cases in the window"
        ),
        "ages": charts.hbars(
            figures.waiting_ages,
            dict.fromkeys((label for label, _ in figures.waiting_ages), charts.PALETTE[1]),
            title="Waiting cases by time since their decision",
        ),
    }


def _load(ui: ReviewUi, user: User, window_name: str) -> tuple[QueueStats, DashboardFigures | None]:
    stats = ui.desk.stats(user)  # also the permission check: the dashboard is for case workers
    if ui.dashboard is None:
        return stats, None
    return stats, ui.dashboard.figures(ui.desk.clock.now(), window_name)


@router.get("/dashboard", name="ui.dashboard")
async def dashboard_page(
    request: Request,
    user: Annotated[User, Depends(signed_in)],
    window: Annotated[str, Query(max_length=8)] = "24h",
) -> Response:
    """The dashboard for the last day (``window=7d`` or ``30d`` for longer)."""
    if window not in WINDOWS:
        raise InputError(f"window must be one of {', '.join(WINDOWS)}, got {window!r}")
    ui = ui_of(request)
    stats, figures = await run_in_threadpool(_load, ui, user, window)
    context: dict[str, Any] = {
        "stats": stats,
        "figures": figures,
        "window": window,
        "windows": list(WINDOWS),
    }
    if figures is not None:
        context["charts"] = charts_of(figures)
    return render(request, "dashboard.html", context)
