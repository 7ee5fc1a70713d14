"""Validation and cleaning of records: every reason code, and the cleaned values."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fraudops.ingest import REASONS, ingest_sources, load_mapping
from fraudops.ingest.mapping import NATIVE
from fraudops.ingest.validate import check
from tests.unit.ingest.samples import (
    assert_reconciles,
    dead_letters,
    native_rows,
    transactions,
    write_csv,
    write_jsonl,
)

BAD_RECORDS = [
    ("missing_field", {"customer_id": "  "}, "customer_id is missing"),
    ("bad_type", {"amount": "abc"}, "amount 'abc' is not a number"),
    ("bad_type", {"terminal_x": "east"}, "terminal_x 'east' is not a number"),
    ("bad_timestamp", {"timestamp": "yesterday"}, "timestamp 'yesterday' is not a time"),
    ("bad_timestamp", {"timestamp": "2024-02-30 10:00:00"}, "2024-02-30"),
    ("amount_out_of_range", {"amount": "-3"}, "amount '-3' is outside"),
    ("amount_out_of_range", {"amount": "1000000.01"}, "is outside [0, 1e+06]"),
    ("unknown_currency", {"currency": "EURO"}, "currency 'EURO' is not an ISO 4217 code"),
    ("coordinate_out_of_range", {"terminal_x": "-1e308"}, "terminal_x '-1e308' is outside ±1e+06"),
    ("bad_label", {"is_fraud": "maybe"}, "is_fraud 'maybe' is not 0, 1, true or false"),
    ("bad_label", {"fraud_scenario": "-1"}, "fraud_scenario '-1'"),
]


@pytest.mark.parametrize(("reason", "change", "detail"), BAD_RECORDS)
def test_each_bad_field_is_rejected_with_its_reason(
    tmp_path: Path, lake: Path, reason: str, change: dict[str, str], detail: str
) -> None:
    """A record failing one check lands in the dead-letter store with that reason and detail."""
    rows = native_rows(3)
    for row in rows:
        row.update(is_fraud="0", fraud_scenario="0", terminal_x="1.5")
    rows[1] = {**rows[1], **change}
    source = write_csv(tmp_path / "in.csv", rows)
    report = ingest_sources([str(source)], lake, NATIVE)
    assert_reconciles(report)
    expected = (2, 1, {reason: 1})
    assert expected == (report.accepted, report.rejected, report.rejected_by_reason)
    [dead] = dead_letters(lake)
    expected_dead = (str(source), "line 3", reason)
    assert expected_dead == (dead["source"], dead["location"], dead["reason"])
    assert detail in dead["detail"]
    assert rows[1]["transaction_id"] in dead["raw"]


def test_zero_amount_is_accepted(tmp_path: Path, lake: Path) -> None:
    """A zero-value authorisation (card verification) is a real transaction, not a reject."""
    rows = native_rows(2)
    rows[0]["amount"] = "0"
    report = ingest_sources([str(write_csv(tmp_path / "in.csv", rows))], lake, NATIVE)
    assert_reconciles(report)
    assert (2, 0) == (report.accepted, report.rejected)


def test_malformed_jsonl_line_is_a_rejected_record(tmp_path: Path, lake: Path) -> None:
    """A JSONL line that is not a JSON object is rejected as malformed_line; the rest land."""
    rows = native_rows(2)
    source = write_jsonl(
        tmp_path / "in.jsonl", [rows[0], '{"transaction_id": "x",', rows[1], "[1]"]
    )
    report = ingest_sources([str(source)], lake, NATIVE)
    assert_reconciles(report)
    expected = (4, 2, {"malformed_line": 2})
    assert expected == (
        report.received,
        report.accepted,
        report.rejected_by_reason,
    )
    expected_locations = ["line 2", "line 4"]
    assert expected_locations == sorted(d["location"] for d in dead_letters(lake))


def test_every_reason_code_is_covered_by_a_test() -> None:
    """The reason codes the validator can give are exactly those exercised above."""
    assert set(REASONS) == {reason for reason, _, _ in BAD_RECORDS}


def test_cleaning_trims_normalises_ids_and_upper_cases_currency(tmp_path: Path, lake: Path) -> None:
    """Whitespace is trimmed, ``12.0`` ids become ``12`` and currency is upper case."""
    rows = [
        {**native_rows(1)[0], "transaction_id": " 12.0 ", "customer_id": "7.00", "currency": " usd"}
    ]
    source = write_csv(tmp_path / "in.csv", rows)
    ingest_sources([str(source)], lake, NATIVE)
    [row] = transactions(lake)
    expected = ("12", "7", "USD")
    assert expected == (row["transaction_id"], row["customer_id"], row["currency"])


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_time_zones_are_converted_to_utc(tmp_path: Path, lake: Path, suffix: str) -> None:
    """Zoned times are converted to UTC and naive ones read as UTC under ``native``."""
    stamps = ["2024-03-01T12:00:00+02:00", "2024-03-01 12:00:00", "2024-03-01T12:00:00Z"]
    rows = [{**row, "timestamp": ts} for row, ts in zip(native_rows(3), stamps, strict=True)]
    path = tmp_path / f"in.{suffix}"
    source = write_csv(path, rows) if suffix == "csv" else write_jsonl(path, rows)
    ingest_sources([str(source)], lake, NATIVE)
    expected = [
        datetime(2024, 3, 1, 10, tzinfo=UTC),
        datetime(2024, 3, 1, 12, tzinfo=UTC),
        datetime(2024, 3, 1, 12, tzinfo=UTC),
    ]
    assert expected == [row["ts"] for row in transactions(lake)]


def test_yaml_mapping_applies_zone_format_epoch_and_scale(tmp_path: Path, lake: Path) -> None:
    """A custom mapping renames columns, reads naive times in its zone and scales cents."""
    mapping_file = tmp_path / "m.yaml"
    mapping_file.write_text(
        "columns: {transaction_id: ref, timestamp: at, customer_id: card, terminal_id: pos,"
        " amount: cents}\n"
        "defaults: {currency: usd}\n"
        "timestamp: {zone: Europe/Paris, format: '%d/%m/%Y %H:%M'}\n"
        "amount_scale: 0.01\n",
        encoding="utf-8",
    )
    source = write_csv(
        tmp_path / "in.csv",
        [{"ref": "a", "at": "01/07/2024 12:30", "card": "c", "pos": "p", "cents": "1234"}],
    )
    report = ingest_sources([str(source)], lake, load_mapping(str(mapping_file)))
    [row] = transactions(lake)
    expected = (1, datetime(2024, 7, 1, 10, 30, tzinfo=UTC), 12.34, "USD")
    assert expected == (
        report.accepted,
        row["ts"],
        row["amount"],
        row["currency"],
    )


def test_epoch_seconds_are_read_when_the_mapping_says_so(tmp_path: Path, lake: Path) -> None:
    """With ``format: epoch_seconds`` numeric times are seconds since 1970 UTC."""
    mapping_file = tmp_path / "m.yaml"
    mapping_file.write_text(
        "columns: {transaction_id: id, timestamp: t, customer_id: c, terminal_id: p,"
        " amount: a}\ndefaults: {currency: EUR}\ntimestamp: {format: epoch_seconds}\n",
        encoding="utf-8",
    )
    source = write_jsonl(
        tmp_path / "in.jsonl",
        [
            {"id": 1, "t": 1_700_000_000, "c": 1, "p": 2, "a": 3.5},
            {"id": 2, "t": "x", "c": 1, "p": 2, "a": 1},
        ],
    )
    report = ingest_sources([str(source)], lake, load_mapping(str(mapping_file)))
    expected = ({"bad_timestamp": 1}, [datetime.fromtimestamp(1_700_000_000, UTC)])
    assert expected == (report.rejected_by_reason, [r["ts"] for r in transactions(lake)])


def test_typed_parquet_columns_are_validated_like_text() -> None:
    """Integer ids, float amounts and boolean labels are read as typed; a 4.5 id is bad."""
    table = pa.table(
        {
            "transaction_id": pa.array([1, 2, 3], pa.int64()),
            "timestamp": pa.array([datetime(2024, 1, d) for d in (1, 2, 3)], pa.timestamp("ns")),
            "customer_id": pa.array([3.0, 4.5, 5.0]),
            "terminal_id": pa.array([5, 6, 7]),
            "amount": pa.array([1.5, 2.0, float("nan")]),
            "is_fraud": pa.array([True, None, False]),
        }
    )
    checked = check(table, NATIVE, 1e6)
    expected_records = (["1"], ["3"], [True])
    assert expected_records == (
        checked.records["transaction_id"].to_pylist(),
        checked.records["customer_id"].to_pylist(),
        checked.records["is_fraud"].to_pylist(),
    )
    expected_rejections = [("bad_type", 1), ("missing_field", 2)]
    assert expected_rejections == [(r.reason, r.row) for r in checked.rejections]
    expected_detail = "customer_id 4.5 is not text or a whole number"
    assert expected_detail == checked.rejections[0].detail


def test_parquet_rejects_are_located_by_row(tmp_path: Path, lake: Path) -> None:
    """A rejected Parquet record is located as ``row N`` counting from 1."""
    rows = native_rows(3)
    rows[2]["amount"] = "-1"
    path = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    ingest_sources([str(path)], lake, NATIVE)
    expected = ["row 3"]
    assert expected == [d["location"] for d in dead_letters(lake)]
