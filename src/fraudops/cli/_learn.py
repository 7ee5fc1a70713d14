"""``fraudops train`` and ``fraudops evaluate``: the handbook's prequential protocol."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fraudops.cli._common import fail_cleanly


@fail_cleanly
def train(
    lake: Annotated[Path, typer.Option(help="Lake directory to read.")],
    out: Annotated[Path, typer.Option(help="Directory to write the model into.")],
    train_start: Annotated[
        str, typer.Option(help="First day of the (latest) training window.")
    ] = "2018-08-15",
    train_days: Annotated[int, typer.Option(min=1)] = 7,
    delay_days: Annotated[int, typer.Option(min=0)] = 7,
    test_days: Annotated[int, typer.Option(min=1)] = 7,
    folds: Annotated[int, typer.Option(min=1, help="Prequential folds, each a week earlier.")] = 1,
    json_output: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
) -> None:
    """Train a model and report its prequential test metrics."""
    raise NotImplementedError(
        f"{lake} {out} {train_start} {train_days} {delay_days} {test_days} {folds} {json_output}"
    )


@fail_cleanly
def evaluate(
    lake: Annotated[Path, typer.Option(help="Lake directory to read.")],
    model: Annotated[Path, typer.Option(help="Model directory written by `fraudops train`.")],
    test_start: Annotated[
        str | None,
        typer.Option(help="First test day; default: the day after the model's delay gap."),
    ] = None,
    test_days: Annotated[int, typer.Option(min=1)] = 7,
    json_output: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
) -> None:
    """Evaluate a trained model on a test window of the lake."""
    raise NotImplementedError(f"{lake} {model} {test_start} {test_days} {json_output}")
