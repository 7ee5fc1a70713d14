"""``fraudops ingest``: load sources into the lake, rejects to the dead-letter store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fraudops.cli._common import fail_cleanly


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
    raise NotImplementedError(f"{sources} {lake} {mapping} {json_output}")
