"""Progress reporting as a dependency: library code reports, the CLI draws the bars."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Receives ``done`` out of ``total`` units of work for a named stage."""

    def __call__(self, stage: str, done: int, total: int) -> None: ...


def no_progress(stage: str, done: int, total: int) -> None:
    """The progress sink for callers that draw nothing (tests, the API)."""
