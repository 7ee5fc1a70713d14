"""The Parquet data lake: its layout, its schemas, and crash-safe appends.

Layout under the lake directory::

    transactions/day=YYYY-MM-DD/part-<run>-<n>.parquet   accepted transactions (TRANSACTIONS)
    labels/day=YYYY-MM-DD/part-<run>-<n>.parquet         labels, by the day they became known
    dead_letter/run=<run>.parquet                        rejected records with their reasons

A part file is written to a temporary name and renamed into place, so a crash leaves
either the whole part or nothing; readers ignore temporary files.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

TIMESTAMP = pa.timestamp("us", tz="UTC")

TRANSACTIONS = pa.schema(
    [
        pa.field("transaction_id", pa.string(), nullable=False),
        pa.field("ts", TIMESTAMP, nullable=False),
        pa.field("customer_id", pa.string(), nullable=False),
        pa.field("terminal_id", pa.string(), nullable=False),
        pa.field("amount", pa.float64(), nullable=False),
        pa.field("currency", pa.string(), nullable=False),
        pa.field("channel", pa.string()),
        pa.field("country", pa.string()),
        pa.field("merchant_category", pa.string()),
        pa.field("terminal_x", pa.float64()),
        pa.field("terminal_y", pa.float64()),
        pa.field("source", pa.string(), nullable=False),
    ]
)
"""Accepted transactions. ``source`` names the file or feed the record came from."""

LABELS = pa.schema(
    [
        pa.field("transaction_id", pa.string(), nullable=False),
        pa.field("is_fraud", pa.bool_(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("known_at", TIMESTAMP, nullable=False),
        pa.field("scenario", pa.int16()),
    ]
)
"""Labels. ``scenario`` is the simulator's fraud scenario (0 = genuine) where known."""

DEAD_LETTER = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("location", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string(), nullable=False),
        pa.field("raw", pa.string(), nullable=False),
    ]
)
"""Rejected records: the raw record as JSON, where it was (``line 12``, ``row 3``) and why."""

TRANSACTIONS_DIR = "transactions"
LABELS_DIR = "labels"
DEAD_LETTER_DIR = "dead_letter"


def new_run_id() -> str:
    """A unique id for one ingestion run, used in part-file names."""
    return uuid.uuid4().hex[:12]


def parquet_glob(lake: Path, table: str) -> str:
    """The glob DuckDB reads one lake table with (hive-partitioned by day)."""
    return str(lake / table / "**" / "*.parquet")


def has_table(lake: Path, table: str) -> bool:
    """Whether the lake holds at least one part file of ``table``."""
    root = lake / table
    return root.is_dir() and any(root.rglob("*.parquet"))


def write_atomically(table: pa.Table, path: Path) -> None:
    """Write ``table`` to ``path`` so that a crash leaves the whole file or none of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    with tmp.open("rb") as handle:
        os.fsync(handle.fileno())
    tmp.replace(path)


def append_by_day(
    lake: Path, table_name: str, table: pa.Table, day_column: str, run_id: str
) -> int:
    """Append ``table`` to the lake, one part file per day of ``day_column``; return the rows."""
    if table.num_rows == 0:
        return 0
    # Sorting by time groups each day's rows together, so a day is one slice; filtering
    # the table once per day instead costs a full scan per day.
    order = pc.sort_indices(table[day_column])
    table = table.take(order)
    # Days as dates, not text: formatting every row's day costs seconds per million rows.
    counts = pc.value_counts(table[day_column].cast(pa.date32()))
    written = 0
    for n, (day, count) in enumerate(
        zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True)
    ):
        part = table.slice(written, count)
        path = lake / table_name / f"day={day.isoformat()}" / f"part-{run_id}-{n:04d}.parquet"
        write_atomically(part, path)
        written += count
    return written
