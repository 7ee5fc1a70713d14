"""Writing a simulated table to disk as one file, atomically, in the chosen format."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from fraudops.errors import InputError

FILE_FORMATS: tuple[str, ...] = ("parquet", "csv", "jsonl")
DATA_STEM = "transactions"

# Text formats carry the handbook's "YYYY-MM-DD HH:MM:SS" rather than an ISO timestamp.
_TEXT_SELECT = (
    "SELECT * REPLACE (strftime(TX_DATETIME, '%Y-%m-%d %H:%M:%S') AS TX_DATETIME) FROM dataset"
)
_DUCKDB_FORMAT = {"csv": "FORMAT csv, HEADER", "jsonl": "FORMAT json"}


def write_dataset(table: pa.Table, out: Path, file_format: str) -> Path:
    """Write ``table`` to ``out/transactions.<ext>`` and return that path.

    The file appears whole or not at all. A dataset left in another format by an earlier run
    is removed, because readers take every data file in the directory.
    """
    if file_format not in FILE_FORMATS:
        raise InputError(
            f"unknown file format {file_format!r}; choose from {', '.join(FILE_FORMATS)}"
        )
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{DATA_STEM}.{file_format}"
    tmp = out / f".{target.name}.tmp"
    if file_format == "parquet":
        pq.write_table(table, tmp)
    else:
        _write_text(table, tmp, file_format)
    publish(tmp, target)
    for other in FILE_FORMATS:
        if other != file_format:
            (out / f"{DATA_STEM}.{other}").unlink(missing_ok=True)
    return target


def publish(tmp: Path, target: Path) -> None:
    """Make the finished ``tmp`` durable and move it onto ``target`` in one step."""
    with tmp.open("rb") as handle:
        os.fsync(handle.fileno())
    tmp.replace(target)


def _write_text(table: pa.Table, path: Path, file_format: str) -> None:
    with duckdb.connect() as con:
        con.register("dataset", table)
        # The path is ours (out dir + fixed name), but quote it in case the dir holds a quote.
        quoted = str(path).replace("'", "''")
        con.execute(f"COPY ({_TEXT_SELECT}) TO '{quoted}' ({_DUCKDB_FORMAT[file_format]})")
