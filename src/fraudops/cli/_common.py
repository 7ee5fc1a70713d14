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
from rich.console import Console
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


def fail_cleanly(command: Callable[P, R]) -> Callable[P, R]:
    """Turn a FraudopsError into a one-line message and exit code 2, not a traceback."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except FraudopsError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(code=2) from exc

    return wrapper
