"""What the review UI is built from: the desk, the session codec, and its read-only sources.

Every page reaches these through :func:`ui_of`; they are made once, when the app starts
(the UI router's lifespan), and closed when it stops.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from fastapi import Request

from fraudops.api.ui.session import SessionCodec
from fraudops.errors import ConfigError
from fraudops.review import ReviewDesk
from fraudops.types import Label

if TYPE_CHECKING:
    from fraudops.api.ui.figures import DashboardFigures
    from fraudops.api.ui.models import ModelsSource
    from fraudops.decide.log import DecisionRecord

LabelSink = Callable[[Label], Awaitable[str]]
"""Applies a verdict's label (online state, training store); answers what became of it, in
words that read after "its label was" (``stored for training and applied to the online
state``). Applying the same label twice must change nothing: verdicts send theirs again."""


class HistorySource(Protocol):
    """A card's and a terminal's recent decisions (the decision log), newest first."""

    def card_history(self, card_id: str, before: datetime, limit: int = 20) -> list[DecisionRecord]:
        """The card's ``limit`` latest decisions before ``before``."""
        ...

    def terminal_history(
        self, terminal_id: str, before: datetime, limit: int = 20
    ) -> list[DecisionRecord]:
        """The terminal's ``limit`` latest decisions before ``before``."""
        ...


class DashboardSource(Protocol):
    """The figures the dashboard draws, over a named window up to ``now``."""

    def figures(self, now: datetime, window_name: str = "24h") -> DashboardFigures:
        """Decisions, verdicts and the waiting queue in window ``window_name`` (``24h``,
        ``7d``, ``30d``) ending at ``now``."""
        ...


@dataclass
class ReviewUi:
    """Everything the pages use. ``history``, ``dashboard`` and ``models`` (the model
    registry the models page reads) may be None (not wired)."""

    desk: ReviewDesk
    sessions: SessionCodec
    apply_label: LabelSink
    history: HistorySource | None = None
    dashboard: DashboardSource | None = None
    models: ModelsSource | None = None
    closers: tuple[Callable[[], None], ...] = ()

    def close(self) -> None:
        """Release the desk's and the sources' connections."""
        for close in self.closers:
            close()
        self.desk.close()


def ui_of(request: Request) -> ReviewUi:
    """The UI parts of the app serving ``request`` (set by the UI router's lifespan)."""
    ui = getattr(request.state, "review_ui", None)
    if not isinstance(ui, ReviewUi):
        raise ConfigError("the review UI's parts are missing: was its router's lifespan run?")
    return ui
