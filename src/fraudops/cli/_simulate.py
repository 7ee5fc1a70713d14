"""``fraudops simulate``: write a simulated transaction dataset."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from fraudops.cli._common import fail_cleanly


class FileFormat(StrEnum):
    parquet = "parquet"
    csv = "csv"
    jsonl = "jsonl"


@fail_cleanly
def simulate(
    out: Annotated[Path, typer.Option(help="Directory to write the dataset into.")],
    customers: Annotated[int, typer.Option(min=1, help="Number of customers (cards).")] = 5000,
    terminals: Annotated[int, typer.Option(min=1, help="Number of terminals.")] = 10000,
    days: Annotated[int, typer.Option(min=1, help="Number of simulated days.")] = 183,
    start: Annotated[str, typer.Option(help="First simulated day (YYYY-MM-DD).")] = "2018-04-01",
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same data.")] = 0,
    file_format: Annotated[
        FileFormat, typer.Option("--format", help="File format of the dataset.")
    ] = FileFormat.parquet,
    scenario: Annotated[
        list[str] | None,
        typer.Option(help="Extra fraud scenario beyond the handbook's (repeatable)."),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Simulate card transactions with the handbook's generative process (plus optional extras)."""
    raise NotImplementedError(
        f"{out} {customers} {terminals} {days} {date.fromisoformat(start)}"
        f" {seed} {file_format} {scenario} {json_output}"
    )
