"""``fraudops ingest`` on the command line: JSON round trip, table output, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from typer.testing import CliRunner

from fraudops.cli import app
from tests.unit.ingest.samples import native_rows, transactions, write_csv

runner = CliRunner()


def test_json_report_round_trips(tmp_path: Path, lake: Path) -> None:
    """``--json`` prints the run's report on stdout; the lake holds what it says."""
    rows = native_rows(4)
    rows[3]["amount"] = "-0.01"
    source = write_csv(tmp_path / "in.csv", rows)
    result = runner.invoke(
        app, ["ingest", str(source), str(tmp_path / "none.csv"), "--lake", str(lake), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    expected = (4, 3, 0, 1, {"amount_out_of_range": 1}, [str(tmp_path / "none.csv")])
    assert expected == (
        report["received"],
        report["accepted"],
        report["duplicates"],
        report["rejected"],
        report["rejected_by_reason"],
        [f["source"] for f in report["failed_sources"]],
    )
    assert report["accepted"] == len(transactions(lake))


def test_handbook_mapping_and_table_output(tmp_path: Path, lake: Path) -> None:
    """``--mapping handbook`` reads handbook columns; without --json a table is printed."""
    table = pa.table(
        {
            "TRANSACTION_ID": [1, 2],
            "TX_DATETIME": ["2018-04-01 00:00:31", "2018-04-01 00:02:10"],
            "CUSTOMER_ID": [5, 6],
            "TERMINAL_ID": [7, 8],
            "TX_AMOUNT": [12.5, 40.0],
            "TX_FRAUD": [0, 1],
            "TX_FRAUD_SCENARIO": [0, 1],
        }
    )
    pq.write_table(table, tmp_path / "transactions.parquet")
    result = runner.invoke(
        app, ["ingest", str(tmp_path), "--lake", str(lake), "--mapping", "handbook"]
    )
    assert result.exit_code == 0, result.output
    assert "labels written: 2" in result.output
    expected_ids = ["1", "2"]
    assert expected_ids == [row["transaction_id"] for row in transactions(lake)]


def test_exit_code_is_2_only_when_nothing_could_be_read(tmp_path: Path, lake: Path) -> None:
    """Every source failing exits 2; rejected records alone do not."""
    garbage = tmp_path / "bad.parquet"
    garbage.write_bytes(b"not parquet at all")
    failed = runner.invoke(app, ["ingest", str(garbage), "--lake", str(lake), "--json"])
    rows = native_rows(1)
    rows[0]["currency"] = "ZZZ"
    rejected = runner.invoke(
        app, ["ingest", str(write_csv(tmp_path / "in.csv", rows)), "--lake", str(lake)]
    )
    expected = (2, 1, 0)
    assert expected == (
        failed.exit_code,
        len(json.loads(failed.stdout)["failed_sources"]),
        rejected.exit_code,
    )


def test_unknown_mapping_is_a_clean_error(tmp_path: Path, lake: Path) -> None:
    """A bad --mapping exits 2 with a one-line message, not a traceback."""
    source = write_csv(tmp_path / "in.csv", native_rows(1))
    result = runner.invoke(app, ["ingest", str(source), "--lake", str(lake), "--mapping", "nope"])
    expected_code = 2
    assert expected_code == result.exit_code
    assert "unknown mapping 'nope'" in result.output
