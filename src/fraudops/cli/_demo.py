"""``fraudops demo``: the whole loop on embedded defaults, in a few minutes."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from fraudops.cli._common import console, emit_json, fail_cleanly, progress_bars


@fail_cleanly
def demo(
    workdir: Annotated[
        Path, typer.Option(help="Where the demo writes its data and model (replaced each run).")
    ] = Path("demo-data"),
    json_output: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Simulate, ingest (with a malformed source), build features, train, replay online."""
    from fraudops.demo import run_demo

    # A demo always starts clean, so running it twice gives the same story.
    shutil.rmtree(workdir, ignore_errors=True)
    with progress_bars() as progress:
        summary = run_demo(workdir, progress=progress)
    if json_output:
        emit_json(summary)
    else:
        _print(summary)


def _fmt(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _print(summary: dict[str, Any]) -> None:
    ingest, training, replay = summary["ingest"], summary["training"], summary["replay"]
    table = Table(title="fraudops demo", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row(
        "ingested",
        f"received {ingest['received']:,} = accepted {ingest['accepted']:,}"
        f" + duplicates {ingest['duplicates']:,} + rejected {ingest['rejected']:,}",
    )
    for reason, count in sorted(ingest["rejected_by_reason"].items()):
        table.add_row("  dead letter", f"{reason}: {count}")
    for failed in ingest["failed_sources"]:
        table.add_row("  failed source", failed["error"])
    table.add_row(
        "trained",
        f"{training['model_version']}: AUC {_fmt(training['roc_auc'])},"
        f" AP {_fmt(training['average_precision'])},"
        f" CP@100 {_fmt(training['card_precision_at_100'])}",
    )
    table.add_row(
        "replayed",
        f"{replay['decisions']:,} decisions, {replay['first_day']} … {replay['last_day']}"
        f" (after {replay['warmup_transactions']:,}"
        " warm-up transactions)",
    )
    for action, count in replay["by_action"].items():
        table.add_row(f"  {action}", f"{count:,}")
    table.add_row(
        "review + decline",
        f"precision {_fmt(replay['precision'])}, recall {_fmt(replay['recall'])}"
        f" ({replay['frauds']:,} frauds in the window)",
    )
    table.add_row(
        "latency per decision",
        f"p50 {_fmt(replay['latency_ms_p50'])} ms, p99 {_fmt(replay['latency_ms_p99'])} ms",
    )
    table.add_row("total time", f"{summary['seconds']:.0f} s")
    console.print(table)
