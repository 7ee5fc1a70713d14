"""A whole run: the lake's contents, labels, dead letters, crash recovery, the handbook layout."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import fraudops.ingest.run as run_module
import fraudops.lake as lake_module
from fraudops.ingest import ingest_sources, load_mapping
from fraudops.ingest.mapping import NATIVE
from fraudops.lake import DEAD_LETTER, LABELS, TRANSACTIONS
from fraudops.types import LabelSource
from tests.unit.ingest.samples import (
    assert_reconciles,
    dead_letters,
    labels,
    lake_rows,
    native_rows,
    transactions,
    write_csv,
)


def _handbook_table(n: int) -> pa.Table:
    return pa.table(
        {
            "TRANSACTION_ID": pa.array(range(n), pa.int64()),
            "TX_DATETIME": pa.array(
                [datetime(2018, 4, 1 + i % 3, 8, i % 60) for i in range(n)], pa.timestamp("ns")
            ),
            "CUSTOMER_ID": pa.array([i % 7 for i in range(n)], pa.int64()),
            "TERMINAL_ID": pa.array([i % 11 for i in range(n)], pa.int64()),
            "TX_AMOUNT": pa.array([5.0 + i for i in range(n)]),
            "TX_TIME_SECONDS": pa.array(range(n), pa.int64()),
            "TX_FRAUD": pa.array([int(i % 4 == 0) for i in range(n)], pa.int64()),
            "TX_FRAUD_SCENARIO": pa.array([(i % 4 == 0) * 2 for i in range(n)], pa.int64()),
        }
    )


def test_handbook_parquet_lands_with_lake_schemas_and_labels(tmp_path: Path, lake: Path) -> None:
    """Handbook columns become lake transactions (EUR, UTC) and dataset labels at tx time."""
    source = tmp_path / "transactions.parquet"
    pq.write_table(_handbook_table(40), source)
    report = ingest_sources([str(source)], lake, load_mapping("handbook"))
    assert_reconciles(report)
    txs = transactions(lake)
    expected_counts = (40, 40, 40, 40)
    assert expected_counts == (report.received, report.accepted, len(txs), report.labels)
    first = next(row for row in txs if row["transaction_id"] == "0")
    expected_first = (datetime(2018, 4, 1, 8, 0, tzinfo=UTC), "0", "0", 5.0, "EUR", str(source))
    assert expected_first == (
        first["ts"],
        first["customer_id"],
        first["terminal_id"],
        first["amount"],
        first["currency"],
        first["source"],
    )
    label = next(row for row in labels(lake) if row["transaction_id"] == "0")
    expected_label = (True, LabelSource.DATASET.value, first["ts"], 2)
    assert expected_label == (
        label["is_fraud"],
        label["source"],
        label["known_at"],
        label["scenario"],
    )


def test_lake_files_carry_exactly_the_contract_schemas(tmp_path: Path, lake: Path) -> None:
    """Transactions, labels and dead letters are written with lake.py's schemas."""
    rows = native_rows(3)
    for row in rows:
        row["is_fraud"] = "true"
    rows[2]["currency"] = "???"
    ingest_sources([str(write_csv(tmp_path / "in.csv", rows))], lake, NATIVE)
    schemas = {
        name: pq.read_schema(next((lake / name).rglob("*.parquet")))
        for name in ("transactions", "labels", "dead_letter")
    }
    assert TRANSACTIONS.equals(schemas["transactions"])
    assert LABELS.equals(schemas["labels"])
    assert DEAD_LETTER.equals(schemas["dead_letter"])


def test_label_known_at_column_is_used_when_the_mapping_names_one(
    tmp_path: Path, lake: Path
) -> None:
    """With a label_known_at column, labels are dated by it; unlabelled records give none."""
    rows = native_rows(3)
    rows[0].update(is_fraud="1", label_known_at="2024-03-20T00:00:00+01:00")
    rows[1].update(is_fraud="0", label_known_at="")
    rows[2].update(is_fraud="", label_known_at="")
    report = ingest_sources([str(write_csv(tmp_path / "in.csv", rows))], lake, NATIVE)
    assert_reconciles(report)
    expected: list[dict[str, Any]] = [
        {"transaction_id": "0", "known_at": datetime(2024, 3, 19, 23, tzinfo=UTC)},
        {"transaction_id": "1", "known_at": datetime(2024, 3, 2, 10, 0, 1, tzinfo=UTC)},
    ]
    actual = [{k: row[k] for k in ("transaction_id", "known_at")} for row in labels(lake)]
    assert expected == actual


def test_dead_letters_hold_raw_record_location_reason_and_detail(
    tmp_path: Path, lake: Path
) -> None:
    """Each reject keeps the raw record as JSON, its line, its reason code and run id."""
    rows = native_rows(2)
    rows[1]["amount"] = "abc"
    source = write_csv(tmp_path / "in.csv", rows)
    report = ingest_sources([str(source)], lake, NATIVE)
    [dead] = dead_letters(lake)
    expected = {
        "run_id": report.run_id,
        "source": str(source),
        "location": "line 3",
        "reason": "bad_type",
        "detail": "amount 'abc' is not a number",
        "raw": '{"transaction_id": "1", "timestamp": "2024-03-02 10:00:01", "customer_id": "c1",'
        ' "terminal_id": "t1", "amount": "abc", "currency": "EUR"}',
    }
    assert expected == dead
    assert str(lake / "dead_letter" / f"run={report.run_id}.parquet") == report.dead_letter


def test_report_has_the_contract_keys(tmp_path: Path, lake: Path) -> None:
    """The report's JSON keys are the ones other stages and the CLI rely on."""
    report = ingest_sources([str(write_csv(tmp_path / "in.csv", native_rows(1)))], lake, NATIVE)
    payload = report.to_dict()
    expected_top = {
        "received", "accepted", "duplicates", "rejected", "rejected_by_reason", "labels",
        "failed_sources", "sources", "run_id", "seconds",
    }  # fmt: skip
    expected_source = {
        "source", "received", "accepted", "duplicates", "rejected", "rejected_by_reason",
        "status", "error",
    }  # fmt: skip
    assert set() == expected_top - set(payload)
    assert set() == expected_source - set(payload["sources"][0])


def test_a_reconciliation_bug_is_loud() -> None:
    """A source report whose counts do not add up raises instead of being handed out."""
    from fraudops.ingest import SourceReport

    broken = SourceReport("x", received=3, accepted=1)
    with pytest.raises(AssertionError, match="received 3"):
        broken.check()


def test_rerun_after_a_crash_between_transactions_and_labels(
    tmp_path: Path, lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash after the transactions landed: the re-run adds no transaction and the labels."""
    rows = native_rows(6)
    for row in rows:
        row["is_fraud"] = "0"
    rows[5]["amount"] = "-1"
    source = str(write_csv(tmp_path / "in.csv", rows))
    real_append = lake_module.append_by_day

    def crash_on_labels(lake_dir: Path, name: str, table: pa.Table, col: str, run: str) -> int:
        if name == "labels":
            raise KeyboardInterrupt("power cut")
        return real_append(lake_dir, name, table, col, run)

    monkeypatch.setattr(run_module, "append_by_day", crash_on_labels)
    with pytest.raises(KeyboardInterrupt):
        ingest_sources([source], lake, NATIVE)
    monkeypatch.setattr(run_module, "append_by_day", real_append)
    report = ingest_sources([source], lake, NATIVE)
    assert_reconciles(report)
    expected = (0, 5, 1, 5, 5, 5, 1)
    assert expected == (
        report.accepted,
        report.duplicates,
        report.rejected,
        report.labels,
        len(transactions(lake)),
        len(labels(lake)),
        len(dead_letters(lake)),
    )


def test_duckdb_reads_back_what_was_accepted(tmp_path: Path, lake: Path) -> None:
    """The lake read with DuckDB holds exactly the accepted count, over several days."""
    rows = native_rows(30)
    rows[4]["timestamp"] = "never"
    report = ingest_sources([str(write_csv(tmp_path / "in.csv", rows))], lake, NATIVE)
    counted = lake_rows(lake, "transactions", "count(*) AS n, count(DISTINCT transaction_id) AS d")
    expected = {"n": 29, "d": 29}
    assert expected == counted[0]
    assert report.accepted == counted[0]["n"]
