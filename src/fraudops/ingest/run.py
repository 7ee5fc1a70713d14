"""One ingestion run: read every source, validate, de-duplicate, land the results.

Crash safety. Accepted transactions are written first, then their labels, then the
dead-letter file; each part file lands whole or not at all. De-duplication reads the lake,
so re-running the same sources after a crash at any point writes each transaction exactly
once and each dataset label exactly once (a transaction already in the lake unchanged
still brings a missing label). What the re-run cannot know is that the crashed run landed
some rows: its report counts those as duplicates (``in_lake``), not as accepted. The
dead-letter file is written last, once per run, so rejects of a crashed run are never
stored twice.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from fraudops.errors import SourceError
from fraudops.ingest.dedup import SeenIds
from fraudops.ingest.mapping import ColumnMapping
from fraudops.ingest.report import IngestReport, SourceReport
from fraudops.ingest.sources import RawBatch, SourceFile, Unmatched, expand, read_source
from fraudops.ingest.validate import check
from fraudops.lake import (
    DEAD_LETTER,
    DEAD_LETTER_DIR,
    LABELS,
    LABELS_DIR,
    TRANSACTIONS,
    TRANSACTIONS_DIR,
    append_by_day,
    new_run_id,
    write_atomically,
)
from fraudops.progress import Progress, no_progress

DEFAULT_MAX_AMOUNT = 1_000_000.0
_STEPS = 3  # read, validate, de-duplicate


@dataclass(frozen=True, slots=True)
class _Landed:
    report: SourceReport
    transactions: pa.Table
    labels: pa.Table
    dead: list[dict[str, str]]


def ingest_sources(
    sources: Sequence[str],
    lake: Path,
    mapping: ColumnMapping,
    *,
    progress: Progress = no_progress,
    max_amount: float = DEFAULT_MAX_AMOUNT,
) -> IngestReport:
    """Ingest files, directories and globs into ``lake``; report what happened to each."""
    started = time.perf_counter()
    run_id = new_run_id()
    seen = SeenIds(lake)
    reports: list[SourceReport] = []
    transactions: list[pa.Table] = []
    labels: list[pa.Table] = []
    dead: list[dict[str, str]] = []
    for item in expand(sources):
        if isinstance(item, Unmatched):
            reports.append(SourceReport(item.name, status="failed", error=item.error))
            continue
        try:
            landed = _ingest_file(item, mapping, seen, max_amount, progress, run_id)
        except SourceError as exc:
            reports.append(SourceReport(item.name, status="failed", error=str(exc)))
            progress(item.name, _STEPS, _STEPS)
            continue
        reports.append(landed.report)
        transactions.append(landed.transactions)
        labels.append(landed.labels)
        dead.extend(landed.dead)

    progress("write lake", 0, 3)
    append_by_day(lake, TRANSACTIONS_DIR, _concat(transactions, TRANSACTIONS), "ts", run_id)
    progress("write lake", 1, 3)
    written_labels = append_by_day(lake, LABELS_DIR, _concat(labels, LABELS), "known_at", run_id)
    progress("write lake", 2, 3)
    dead_letter = None
    if dead:
        path = lake / DEAD_LETTER_DIR / f"run={run_id}.parquet"
        write_atomically(pa.Table.from_pylist(dead, schema=DEAD_LETTER), path)
        dead_letter = str(path)
    progress("write lake", 3, 3)

    report = IngestReport(
        run_id=run_id,
        sources=reports,
        labels=written_labels,
        seconds=time.perf_counter() - started,
        dead_letter=dead_letter,
    )
    report.check()
    return report


def _concat(parts: list[pa.Table], schema: pa.Schema) -> pa.Table:
    tables = [part for part in parts if part.num_rows]
    return pa.concat_tables(tables) if tables else schema.empty_table()


def _ingest_file(
    source: SourceFile,
    mapping: ColumnMapping,
    seen: SeenIds,
    max_amount: float,
    progress: Progress,
    run_id: str,
) -> _Landed:
    progress(source.name, 0, _STEPS)
    batch = read_source(source, mapping)
    progress(source.name, 1, _STEPS)
    checked = check(batch.table, mapping, max_amount)
    progress(source.name, 2, _STEPS)
    unique = seen.split(checked.records)
    progress(source.name, 3, _STEPS)

    dead = [
        _dead_row(run_id, source.name, early.location, early.reason, early.detail, early.raw)
        for early in batch.early_rejects
    ]
    rows = [rejection.row for rejection in checked.rejections]
    for rejection, location, raw in zip(
        checked.rejections, batch.locations(rows), _raw_records(batch, rows), strict=True
    ):
        dead.append(
            _dead_row(run_id, source.name, location, rejection.reason, rejection.detail, raw)
        )
    reasons = Counter(row["reason"] for row in dead)
    report = SourceReport(
        source.name,
        received=batch.received,
        accepted=unique.accepted.num_rows,
        rejected=len(dead),
        rejected_by_reason=dict(reasons),
        duplicates_detail=unique.counts,
    )
    report.check()
    accepted = unique.accepted.append_column(
        "source", pa.array([source.name] * unique.accepted.num_rows, pa.string())
    )
    return _Landed(
        report,
        accepted.select(TRANSACTIONS.names).cast(TRANSACTIONS),
        unique.labels.cast(LABELS),
        dead,
    )


def _dead_row(
    run_id: str, source: str, location: str, reason: str, detail: str, raw: str
) -> dict[str, str]:
    return {
        "run_id": run_id,
        "source": source,
        "location": location,
        "reason": reason,
        "detail": detail,
        "raw": raw,
    }


def _raw_records(batch: RawBatch, rows: list[int]) -> list[str]:
    """Each rejected record as JSON text, as close to the file as the reader kept it."""
    if not rows:
        return []
    if batch.raw_text is not None:
        return [batch.raw_text[row] for row in rows]
    records = batch.table.take(pa.array(rows, pa.int64())).to_pylist()
    return [json.dumps(_json_safe(record), default=str, ensure_ascii=False) for record in records]


def _json_safe(record: dict[str, object]) -> dict[str, object]:
    return {
        key: None if isinstance(value, float) and math.isnan(value) else value
        for key, value in record.items()
    }
