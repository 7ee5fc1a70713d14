"""The analysts' web UI: sign-in, the queue, cases and verdicts, dashboard, audit, users.

Server-rendered (Jinja2 templates, htmx for the parts that refresh; no front-end build),
served under ``/ui`` by the same app as the decision API. Every page reads the signed-in
user from a signed session cookie and asks the review desk, which checks every permission.
``app.include_router(review_ui(settings))`` mounts it.
"""

from fraudops.api.ui.figures import DashboardFigures, SqlDashboardSource
from fraudops.api.ui.parts import DashboardSource, HistorySource, LabelSink, ReviewUi
from fraudops.api.ui.router import review_ui, review_ui_router, runtime_labels
from fraudops.api.ui.session import Session, SessionCodec

__all__ = [
    "DashboardFigures",
    "DashboardSource",
    "HistorySource",
    "LabelSink",
    "ReviewUi",
    "Session",
    "SessionCodec",
    "SqlDashboardSource",
    "review_ui",
    "review_ui_router",
    "runtime_labels",
]
