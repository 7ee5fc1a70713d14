"""``fraudops demo``: the whole loop on embedded defaults, in a few minutes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fraudops.cli._common import fail_cleanly


@fail_cleanly
def demo(
    workdir: Annotated[Path, typer.Option(help="Where the demo writes its data and model.")] = Path(
        "demo-data"
    ),
    json_output: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Simulate, ingest (with a malformed source), build features, train, replay online."""
    raise NotImplementedError(f"{workdir} {json_output}")
