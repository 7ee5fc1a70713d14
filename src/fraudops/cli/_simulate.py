"""``fraudops simulate``: write a simulated transaction dataset."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from fraudops.cli._common import console, emit_json, fail_cleanly, progress_bars
from fraudops.errors import InputError
from fraudops.simulate import SimulationConfig, SimulationReport, run_simulation


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
    seed: Annotated[
        int, typer.Option(min=0, help="Random seed; the same seed gives the same data.")
    ] = 0,
    file_format: Annotated[
        FileFormat, typer.Option("--format", help="File format of the dataset.")
    ] = FileFormat.parquet,
    scenario: Annotated[
        list[str] | None,
        typer.Option(
            help="Extra fraud scenario beyond the handbook's (repeatable): "
            "card_testing, account_takeover."
        ),
    ] = None,
    radius: Annotated[
        float, typer.Option(help="Distance within which a customer uses terminals.")
    ] = 5.0,
    json_output: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Simulate card transactions with the handbook's generative process (plus optional extras)."""
    try:
        first_day = date.fromisoformat(start)
    except ValueError as exc:
        raise InputError(f"--start must be a date YYYY-MM-DD, got {start!r}") from exc
    config = SimulationConfig(
        n_customers=customers,
        n_terminals=terminals,
        n_days=days,
        start=first_day,
        seed=seed,
        radius=radius,
        scenarios=frozenset(scenario or ()),
    )
    with progress_bars(enabled=not json_output) as progress:
        report = run_simulation(config, out, file_format.value, progress)
    if json_output:
        emit_json(report.to_dict())
    else:
        _print_summary(report)


def _print_summary(report: SimulationReport) -> None:
    console.print(
        f"Wrote {report.transactions:,} transactions, {report.frauds:,} frauds "
        f"({report.fraud_rate:.2%}) to {report.path} in {report.seconds:.1f} s",
        # A wrapped path cannot be copied back into a shell.
        soft_wrap=True,
    )
    for name, count in report.frauds_by_scenario.items():
        console.print(f"  {name:<22} {count:>8,}")
