"""De-duplication by transaction id: within a source, across sources, across runs."""

from __future__ import annotations

from pathlib import Path

from fraudops.ingest import ingest_sources
from fraudops.ingest.mapping import NATIVE
from tests.unit.ingest.samples import (
    assert_reconciles,
    labels,
    native_rows,
    transactions,
    write_csv,
    write_jsonl,
)


def test_repeated_id_within_a_source_keeps_the_first(tmp_path: Path, lake: Path) -> None:
    """The first record of an id wins; an identical repeat is a plain duplicate."""
    rows = native_rows(3)
    source = write_csv(tmp_path / "in.csv", [*rows, rows[0]])
    report = ingest_sources([str(source)], lake, NATIVE)
    assert_reconciles(report)
    detail = report.duplicates_detail
    expected = (3, 1, 1, 0)
    assert expected == (
        report.accepted,
        report.duplicates,
        detail.within_source,
        detail.conflicting_duplicates,
    )


def test_duplicate_with_other_content_counts_as_conflicting(tmp_path: Path, lake: Path) -> None:
    """A repeat with a different amount is still a duplicate, counted as conflicting."""
    rows = native_rows(2)
    changed = {**rows[0], "amount": "999"}
    source = write_csv(tmp_path / "in.csv", [*rows, changed])
    report = ingest_sources([str(source)], lake, NATIVE)
    assert_reconciles(report)
    expected = (1, 1, [10.5, 11.5])
    assert expected == (
        report.duplicates,
        report.duplicates_detail.conflicting_duplicates,
        [row["amount"] for row in transactions(lake)],
    )


def test_ids_repeated_across_sources_in_one_run(tmp_path: Path, lake: Path) -> None:
    """An id seen in an earlier source of the same run is a duplicate in the later one."""
    first = write_csv(tmp_path / "a.csv", native_rows(3))
    second = write_jsonl(tmp_path / "b.jsonl", native_rows(3, start=2))
    report = ingest_sources([str(first), str(second)], lake, NATIVE)
    assert_reconciles(report)
    later = report.sources[1]
    expected = (2, 1, 1, 5)
    assert expected == (
        later.accepted,
        later.duplicates,
        later.duplicates_detail.across_sources,
        len(transactions(lake)),
    )


def test_reingesting_a_file_adds_nothing(tmp_path: Path, lake: Path) -> None:
    """A second run of the same file accepts nothing and counts every record a duplicate."""
    rows = native_rows(5)
    for row in rows:
        row["is_fraud"] = "1"
    source = write_csv(tmp_path / "in.csv", rows)
    first = ingest_sources([str(source)], lake, NATIVE)
    second = ingest_sources([str(source)], lake, NATIVE)
    assert_reconciles(first)
    assert_reconciles(second)
    expected = (0, 5, 5, 0, 0, 5, 5)
    assert expected == (
        second.accepted,
        second.received,
        second.duplicates_detail.in_lake,
        second.duplicates_detail.conflicting_duplicates,
        second.labels,
        len(transactions(lake)),
        len(labels(lake)),
    )


def test_changed_record_in_a_later_run_is_a_conflicting_duplicate(
    tmp_path: Path, lake: Path
) -> None:
    """An id already in the lake with other content is not overwritten, and is flagged."""
    rows = native_rows(2)
    ingest_sources([str(write_csv(tmp_path / "a.csv", rows))], lake, NATIVE)
    changed = [{**rows[0], "terminal_id": "elsewhere"}]
    report = ingest_sources([str(write_csv(tmp_path / "b.csv", changed))], lake, NATIVE)
    assert_reconciles(report)
    expected = (1, 1, "t0")
    assert expected == (
        report.duplicates_detail.in_lake,
        report.duplicates_detail.conflicting_duplicates,
        transactions(lake)[0]["terminal_id"],
    )
