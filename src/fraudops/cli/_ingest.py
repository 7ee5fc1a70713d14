"""``fraudops ingest``: load sources into the lake, rejects to the dead-letter store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from fraudops.cli._common import console, emit_json, fail_cleanly, progress_bars
from fraudops.ingest import IngestReport, ingest_sources, load_mapping


@fail_cleanly
def ingest(
    sources: Annotated[list[str], typer.Argument(help="Files, directories or globs to ingest.")],
    lake: Annotated[Path, typer.Option(help="Lake directory to append to.")],
    mapping: Annotated[
        str, typer.Option(help="Column mapping: a built-in name (handbook, native) or a YAML file.")
    ] = "native",
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Validate, clean and de-duplicate sources into the lake; report what happened to each."""
    column_mapping = load_mapping(mapping)
    with progress_bars(enabled=not json_output) as progress:
        report = ingest_sources(sources, lake, column_mapping, progress=progress)
    if json_output:
        emit_json(report.to_dict())
    else:
        _print(report)
    # Rejected records are an outcome, not a failure; only a run that read nothing fails.
    if report.nothing_read:
        raise typer.Exit(code=2)


def _print(report: IngestReport) -> None:
    table = Table(title=f"ingest run {report.run_id} ({report.seconds:.1f} s)")
    for name in ("source", "status", "received", "accepted", "duplicates", "rejected"):
        table.add_column(name, justify="left" if name in ("source", "status") else "right")
    for source in report.sources:
        status = "[green]ok[/green]" if source.status == "ok" else "[red]failed[/red]"
        table.add_row(
            source.source,
            status,
            *(
                f"{count:,}"
                for count in (source.received, source.accepted, source.duplicates, source.rejected)
            ),
        )
    table.add_section()
    table.add_row(
        "total",
        "",
        *(
            f"{count:,}"
            for count in (report.received, report.accepted, report.duplicates, report.rejected)
        ),
    )
    console.print(table)
    conflicts = report.duplicates_detail.conflicting_duplicates
    if conflicts:
        console.print(f"[yellow]{conflicts:,} duplicates differ from the record kept[/yellow]")
    for reason, count in report.rejected_by_reason.items():
        console.print(f"rejected {reason}: {count:,}")
    if report.dead_letter:
        console.print(f"dead letters: {report.dead_letter}")
    console.print(f"labels written: {report.labels:,}")
    for failed in report.failed_sources:
        console.print(f"[red]failed[/red] {failed['source']}: {failed['error']}")
