"""Test material for ingestion: tiny source files, lake readers, the reconciliation check."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

from fraudops.ingest import IngestReport
from fraudops.lake import DEAD_LETTER_DIR, LABELS_DIR, TRANSACTIONS_DIR, has_table, parquet_glob

NATIVE_HEADER = ["transaction_id", "timestamp", "customer_id", "terminal_id", "amount", "currency"]


def native_rows(n: int, start: int = 0) -> list[dict[str, Any]]:
    """``n`` valid native records with ids ``start`` … ``start + n - 1``."""
    return [
        {
            "transaction_id": str(i),
            "timestamp": f"2024-03-0{1 + i % 3} 10:00:{i % 60:02d}",
            "customer_id": f"c{i % 4}",
            "terminal_id": f"t{i % 5}",
            "amount": f"{10 + i}.50",
            "currency": "EUR",
        }
        for i in range(start, start + n)
    ]


def write_csv(
    path: Path, rows: Sequence[dict[str, Any]], header: Sequence[str] | None = None
) -> Path:
    """Write ``rows`` as CSV with ``header`` (default: the first row's keys)."""
    names = list(header if header is not None else rows[0].keys())
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=names, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, rows: Sequence[dict[str, Any] | str]) -> Path:
    """Write records (or literal lines, when given as text) as JSON Lines."""
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def assert_reconciles(report: IngestReport) -> None:
    """Every record read is accepted, a duplicate or rejected: per source and in total."""
    payload = report.to_dict()
    for entry in [payload, *payload["sources"]]:
        assert entry["received"] == entry["accepted"] + entry["duplicates"] + entry["rejected"]
        assert entry["rejected"] == sum(entry["rejected_by_reason"].values())


def lake_rows(lake: Path, table: str, columns: str = "*") -> list[dict[str, Any]]:
    """Rows of one lake table, read the way the feature stage reads it (DuckDB)."""
    if not has_table(lake, table):
        return []
    glob = (
        parquet_glob(lake, table) if table != DEAD_LETTER_DIR else str(lake / table / "*.parquet")
    )
    with duckdb.connect() as con:
        relation = con.sql(
            f"SELECT {columns} FROM read_parquet(?, hive_partitioning = false)", params=[glob]
        )
        names = relation.columns
        return [dict(zip(names, row, strict=True)) for row in relation.fetchall()]


def transactions(lake: Path) -> list[dict[str, Any]]:
    """The lake's transactions, ordered by id."""
    return sorted(lake_rows(lake, TRANSACTIONS_DIR), key=lambda r: r["transaction_id"])


def labels(lake: Path) -> list[dict[str, Any]]:
    """The lake's labels, ordered by id."""
    return sorted(lake_rows(lake, LABELS_DIR), key=lambda r: r["transaction_id"])


def dead_letters(lake: Path) -> list[dict[str, Any]]:
    """Every dead-letter record in the lake."""
    return lake_rows(lake, DEAD_LETTER_DIR)
