"""What every command shares: JSON output, progress bars and turning errors into exit codes."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.measure import Measurement
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress

from fraudops.errors import FraudopsError
from fraudops.progress import Progress

# Progress bars and human messages go to stderr so ``--json`` output on stdout stays parseable.
console = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")


def _default(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def emit_json(report: dict[str, Any]) -> None:
    """Print ``report`` as one JSON document on stdout."""
    sys.stdout.write(json.dumps(report, indent=2, default=_default) + "\n")
    sys.stdout.flush()


@contextmanager
def progress_bars(enabled: bool = True) -> Iterator[Progress]:
    """A Progress sink that draws one rich bar per stage on stderr."""
    columns = (
        TextColumn("[bold]{task.description:<24}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with RichProgress(*columns, console=console, disable=not enabled, transient=False) as bars:
        tasks: dict[str, TaskID] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bars.add_task(stage, total=total)
            bars.update(tasks[stage], completed=done, total=total)

        yield report


def show(renderable: RenderableType, *, result: bool = False) -> None:
    """Print a table (or any renderable) whole: on stderr, or on stdout when it is the
    command's ``result`` (``fraudops models list > f``).

    On a terminal it fits the window; piped or redirected there is no window, and rich's
    80-column default would cut a wide table's cells short, so it gets its natural width.
    """
    out = Console() if result else console
    if out.is_terminal:
        out.print(renderable)
        return
    wide = Console(file=out.file, width=10_000)
    width = Measurement.get(wide, wide.options, renderable).maximum
    Console(file=out.file, width=max(width, out.width)).print(renderable)


def say(kind: str, message: str) -> None:
    """One ``error:`` / ``warning:`` line on stderr: the message verbatim, never wrapped.

    A message is text, not markup: a path such as ``models/[bold]v1`` prints as it is.
    """
    colour = "red" if kind == "error" else "yellow"
    console.print(f"[{colour}]{kind}:[/{colour}] {escape(message)}", soft_wrap=True)


def fail_cleanly(command: Callable[P, R]) -> Callable[P, R]:
    """Turn a FraudopsError into a one-line message and exit code 2, not a traceback."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except FraudopsError as exc:
            say("error", str(exc))
            raise typer.Exit(code=2) from exc

    return wrapper
