"""Finding and reading sources: formats, directories, globs, and broken files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fraudops.ingest import ingest_sources
from fraudops.ingest.mapping import NATIVE
from tests.unit.ingest.samples import (
    assert_reconciles,
    native_rows,
    transactions,
    write_csv,
    write_jsonl,
)


def _truncated_parquet(path: Path) -> Path:
    pq.write_table(pa.Table.from_pylist(native_rows(50)), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _latin1_csv(path: Path) -> Path:
    text = "transaction_id,timestamp,customer_id,terminal_id,amount,currency\n"
    text += "1,2024-03-01 10:00:00,c1,t1,10,EUR\n"
    text += "2,2024-03-01 10:00:00,Zoë,t1,10,EUR\n"
    path.write_bytes(text.encode("latin-1"))
    return path


def _missing_columns_csv(path: Path) -> Path:
    return write_csv(path, [{"transaction_id": "1", "amount": "2"}])


def _garbage_parquet(path: Path) -> Path:
    path.write_bytes(bytes(range(256)) * 4)
    return path


def _ragged_csv(path: Path) -> Path:
    rows = native_rows(4)
    write_csv(path, rows)
    with path.open("a", encoding="utf-8") as handle:
        handle.write("99,2024-03-01 10:00:00,c1\n")
    return path


def _keyless_jsonl(path: Path) -> Path:
    rows = native_rows(3)
    for row in rows:
        del row["timestamp"]
    return write_jsonl(path, rows)


def _latin1_jsonl(path: Path) -> Path:
    good, bad = (json.dumps(row).encode() for row in native_rows(2))
    path.write_bytes(good + b"\n" + bad.replace(b'"c1"', b'"Zo\xeb"') + b"\n")
    return path


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        ("truncated.parquet", _truncated_parquet, "truncated.parquet: not a readable Parquet"),
        ("latin1.csv", _latin1_csv, "latin1.csv:3: not UTF-8: byte 0xeb"),
        ("columns.csv", _missing_columns_csv, "columns.csv:1: missing required columns timestamp"),
        ("garbage.parquet", _garbage_parquet, "garbage.parquet: not a readable Parquet"),
        ("ragged.csv", _ragged_csv, "ragged.csv:6: expected 6 fields, found 3"),
        ("latin1.jsonl", _latin1_jsonl, "latin1.jsonl:2: not UTF-8"),
        ("keyless.jsonl", _keyless_jsonl, "keyless.jsonl: missing required fields"),
    ],
)
def test_broken_file_fails_its_source_and_the_others_still_land(
    tmp_path: Path, lake: Path, name: str, make: object, message: str
) -> None:
    """A broken file is a failed source naming file and line; the good source is ingested."""
    assert callable(make)
    broken = make(tmp_path / name)
    good = write_csv(tmp_path / "good.csv", native_rows(3))
    report = ingest_sources([str(broken), str(good)], lake, NATIVE)
    assert_reconciles(report)
    [failed] = report.failed_sources
    assert str(broken) == failed["source"]
    assert message in failed["error"]
    entry = report.to_dict()["sources"][0]
    expected = ("failed", 0, 3)
    assert expected == (entry["status"], entry["received"], len(transactions(lake)))


def test_a_file_failing_midway_contributes_nothing(tmp_path: Path, lake: Path) -> None:
    """Rows read before the break are not ingested: a failed source lands none of its rows."""
    broken = _ragged_csv(tmp_path / "ragged.csv")
    report = ingest_sources([str(broken)], lake, NATIVE)
    assert_reconciles(report)
    expected = (0, 0, 0)
    assert expected == (report.received, report.accepted, len(transactions(lake)))


def test_directories_and_globs_expand_to_every_supported_file(tmp_path: Path, lake: Path) -> None:
    """A directory is read recursively and sorted; a glob matches files; others are skipped."""
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    write_csv(folder / "b.csv", native_rows(2, start=0))
    write_jsonl(folder / "sub" / "a.ndjson", native_rows(2, start=10))
    pq.write_table(pa.Table.from_pylist(native_rows(2, start=20)), folder / "c.parquet")
    with gzip.open(folder / "d.csv.gz", "wt", encoding="utf-8") as handle:
        handle.write("transaction_id,timestamp,customer_id,terminal_id,amount\n")
        handle.write("30,2024-03-01 10:00:00,c,t,5\n")
    (folder / "notes.txt").write_text("ignored", encoding="utf-8")
    other = tmp_path / "more"
    other.mkdir()
    write_jsonl(other / "x.jsonl", native_rows(1, start=40))
    report = ingest_sources([str(folder), str(other / "*.jsonl")], lake, NATIVE)
    assert_reconciles(report)
    expected_sources = [
        str(folder / "b.csv"),
        str(folder / "c.parquet"),
        str(folder / "d.csv.gz"),
        str(folder / "sub" / "a.ndjson"),
        str(other / "x.jsonl"),
    ]
    assert expected_sources == [s.source for s in report.sources]
    expected = (8, 8)
    assert expected == (report.accepted, len(transactions(lake)))


@pytest.mark.parametrize("pattern", ["nothing/*.csv", "missing.csv", "empty_dir", "notes.txt"])
def test_a_source_matching_nothing_is_an_error_entry(
    tmp_path: Path, lake: Path, pattern: str
) -> None:
    """A glob, path or directory with no readable file is reported failed, not a crash."""
    (tmp_path / "empty_dir").mkdir()
    (tmp_path / "notes.txt").write_text("x", encoding="utf-8")
    good = write_csv(tmp_path / "good.csv", native_rows(1))
    report = ingest_sources([str(tmp_path / pattern), str(good)], lake, NATIVE)
    assert_reconciles(report)
    expected = ([str(tmp_path / pattern)], 1)
    assert expected == ([f["source"] for f in report.failed_sources], report.accepted)


def test_blank_lines_do_not_shift_reported_line_numbers(tmp_path: Path, lake: Path) -> None:
    """Line numbers of rejects count blank lines, as an editor would."""
    from tests.unit.ingest.samples import dead_letters

    path = tmp_path / "in.jsonl"
    rows = native_rows(2)
    rows[1]["amount"] = "-5"
    write_jsonl(path, [rows[0], "", rows[1]])
    ingest_sources([str(path)], lake, NATIVE)
    expected = ["line 3"]
    assert expected == [d["location"] for d in dead_letters(lake)]
