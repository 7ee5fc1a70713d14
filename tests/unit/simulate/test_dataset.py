"""Writing datasets: one file per directory, atomic, readable back, same seed same bytes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fraudops.errors import InputError
from fraudops.simulate import FILE_FORMATS, run_simulation, simulate, write_dataset
from tests.unit.simulate.conftest import SMALL

DATA_SUFFIXES = {".parquet", ".csv", ".jsonl"}


@pytest.fixture(scope="module")
def table() -> pa.Table:
    """A small handbook-only table."""
    return simulate(SMALL)


def _read_text(path: Path) -> pd.DataFrame:
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype={"TX_DATETIME": str})
    return pd.read_json(path, lines=True, dtype=False)


def test_parquet_round_trips_exactly(table: pa.Table, tmp_path: Path) -> None:
    """The Parquet file reads back as the same table, schema included."""
    path = write_dataset(table, tmp_path, "parquet")
    assert tmp_path / "transactions.parquet" == path
    assert pq.read_table(path).equals(table)


@pytest.mark.parametrize("file_format", ["csv", "jsonl"])
def test_text_formats_round_trip(table: pa.Table, tmp_path: Path, file_format: str) -> None:
    """CSV and JSONL hold the same values, with TX_DATETIME as 'YYYY-MM-DD HH:MM:SS' text."""
    path = write_dataset(table, tmp_path, file_format)
    assert tmp_path / f"transactions.{file_format}" == path
    back = _read_text(path)
    expected = table.to_pandas()
    assert list(expected.columns) == list(back.columns)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", s) for s in back["TX_DATETIME"])
    assert expected["TX_DATETIME"].dt.strftime("%Y-%m-%d %H:%M:%S").tolist() == (
        back["TX_DATETIME"].tolist()
    )
    numeric = [c for c in expected.columns if c != "TX_DATETIME"]
    pd.testing.assert_frame_equal(expected[numeric], back[numeric], check_dtype=False)


@pytest.mark.parametrize("file_format", FILE_FORMATS)
def test_same_seed_writes_the_same_bytes(tmp_path: Path, file_format: str) -> None:
    """Two runs with one config write byte-identical files."""
    first = write_dataset(simulate(SMALL), tmp_path / "a", file_format)
    second = write_dataset(simulate(SMALL), tmp_path / "b", file_format)
    assert first.read_bytes() == second.read_bytes()


def test_directory_holds_one_dataset_and_no_temporaries(table: pa.Table, tmp_path: Path) -> None:
    """Re-writing in another format replaces the old file; no temporary file is left behind."""
    write_dataset(table, tmp_path, "csv")
    write_dataset(table, tmp_path, "parquet")
    write_dataset(table, tmp_path, "parquet")
    expected = ["transactions.parquet"]
    assert expected == sorted(p.name for p in tmp_path.iterdir())


def test_unknown_format_is_an_input_error(table: pa.Table, tmp_path: Path) -> None:
    """Asking for a format we do not write fails clearly."""
    with pytest.raises(InputError, match="xlsx"):
        write_dataset(table, tmp_path, "xlsx")


def test_run_records_the_simulation(tmp_path: Path) -> None:
    """simulation.json holds the config and counts that match the written data."""
    report = run_simulation(SMALL, tmp_path, "parquet")
    data = pq.read_table(report.path).to_pandas()
    summary = json.loads((tmp_path / "simulation.json").read_text())
    by_label = data["TX_FRAUD_SCENARIO"].value_counts()
    expected_by_scenario = {
        "large_amount": int(by_label.get(1, 0)),
        "compromised_terminal": int(by_label.get(2, 0)),
        "compromised_card": int(by_label.get(3, 0)),
    }
    assert expected_by_scenario == summary["frauds_by_scenario"]
    assert (len(data), int(data["TX_FRAUD"].sum())) == (summary["transactions"], summary["frauds"])
    assert (SMALL.n_customers, SMALL.seed, "transactions.parquet") == (
        summary["customers"],
        summary["seed"],
        summary["path"],
    )
    assert data["TX_FRAUD"].mean() == pytest.approx(summary["fraud_rate"])
    data_files = [p.name for p in tmp_path.iterdir() if p.suffix in DATA_SUFFIXES]
    expected_files = ["transactions.parquet"]
    assert expected_files == data_files
