"""The review UI as one router under ``/ui``, and how it is built from settings.

``app.include_router(review_ui(settings))`` adds it to the decision service: its lifespan
(run inside the app's, so the decision runtime is up) opens the review desk and the
decision-log readers, and closes them at shutdown. Tests build it with
:func:`review_ui_router` and their own parts.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI

from fraudops.api.ui import assets, audit, cases, dashboard, models, queue, sign_in, users
from fraudops.api.ui.figures import SqlDashboardSource
from fraudops.api.ui.parts import LabelSink, ReviewUi
from fraudops.api.ui.session import SessionCodec
from fraudops.clock import SystemClock
from fraudops.errors import ConfigError, StoreError
from fraudops.review import CaseIntake, CaseStore, SqlDecisionReader, open_review_desk

if TYPE_CHECKING:
    from fraudops.settings import Settings
    from fraudops.types import Label

PREFIX = "/ui"
PAGES = (
    assets.router,
    sign_in.router,
    queue.router,
    cases.router,
    dashboard.router,
    audit.router,
    users.router,
    models.router,
)


def review_ui_router(build: Callable[[FastAPI], ReviewUi]) -> APIRouter:
    """The UI's pages under ``/ui``; ``build`` makes their parts when the app starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        ui = await asyncio.to_thread(build, app)
        try:
            yield {"review_ui": ui}
        finally:
            await asyncio.to_thread(ui.close)

    router = APIRouter(prefix=PREFIX, lifespan=lifespan, include_in_schema=False)
    for pages in PAGES:
        router.include_router(pages)
    return router


LABEL_EFFECTS: dict[str, str] = {
    "unchanged": (
        "stored for training; the online state already held this label, so nothing changed there"
    ),
    "unknown_transaction": (
        "stored for training; the online state does not hold this payment (this service"
        " never saw it, or it has expired), so no live feature changed"
    ),
    "known_before_transaction": (
        "stored for training, but not applied: it would be known before its payment happened"
    ),
    "past_window": (
        "stored for training; the payment is older than its terminal's risk windows, so no"
        " live feature changed"
    ),
}
"""What each reason ``DecisionService.learn`` gives for not applying a label means, in words
(the values of ``fraudops.features.online.LabelEffect``)."""


def runtime_labels(app: FastAPI) -> LabelSink:
    """Labels to the running decision service: stored for training, applied to the online
    state (``DecisionService.learn``); each answered in words (:data:`LABEL_EFFECTS`)."""

    async def apply(label: Label) -> str:
        runtime = getattr(app.state, "runtime", None)
        if runtime is None:
            raise StoreError("the decision service is not running, so no label could be applied")
        outcome = await runtime.service.learn(label)
        if outcome.applied:
            return "stored for training and applied to the online state"
        reason = outcome.reason or "no reason given"
        # Any other reason is a failure of the online state's store, named by its code.
        return LABEL_EFFECTS.get(
            reason, f"stored for training, but not applied to the online state ({reason})"
        )

    return apply


def start_intake(settings: Settings, cases: CaseStore) -> Callable[[], None]:
    """Start the worker that opens cases from the decision log; returns its stop function.

    It reads the decision log's database on its own thread, never the decision path, so a
    review database outage only delays cases (they open once it returns).
    """
    review = settings.review
    reader = SqlDecisionReader(settings.decision_log.url)
    intake = CaseIntake(
        reader,
        cases,
        SystemClock(),
        audit_sample_rate=review.audit_sample_rate,
        sla=timedelta(minutes=review.sla_minutes),
        settle=timedelta(seconds=review.intake_settle_s),
        batch_size=review.intake_batch_size,
    )
    stop = threading.Event()
    worker = threading.Thread(
        target=intake.run,
        args=(stop,),
        kwargs={"interval_s": review.intake_interval_s},
        name="fraudops-case-intake",
        daemon=True,
    )
    worker.start()

    def close() -> None:
        stop.set()
        worker.join(timeout=10.0)
        reader.close()

    return close


def review_ui(settings: Settings) -> APIRouter:
    """The review UI for ``settings``: desk on ``review.database_url``, history and
    dashboard from the decision log, sessions signed with ``review.session_secret``."""
    review = settings.review
    if review.session_secret is None:
        raise ConfigError("the review UI needs review.session_secret to sign its sessions")
    sessions = SessionCodec(
        review.session_secret.get_secret_value(), max_age_s=review.session_max_age_s
    )
    review_url = review.database_url(settings.data_dir)
    log_url = settings.decision_log.url

    def build(app: FastAPI) -> ReviewUi:
        desk = open_review_desk(
            review_url,
            SystemClock(),
            lock_ttl=timedelta(minutes=review.lock_minutes),
            daily_capacity=review.daily_capacity,
            sign_in_max_failures=review.sign_in_max_failures,
            sign_in_max_client_failures=review.sign_in_max_client_failures,
            sign_in_window=timedelta(seconds=review.sign_in_window_s),
        )
        history = SqlDecisionReader(log_url)
        figures = SqlDashboardSource(log_url, review_url)
        stop_intake = start_intake(settings, desk.cases)
        return ReviewUi(
            desk=desk,
            sessions=sessions,
            apply_label=runtime_labels(app),
            history=history,
            dashboard=figures,
            models=models.ModelsSource.from_settings(settings),
            closers=(stop_intake, history.close, figures.close),
        )

    return review_ui_router(build)
