"""``fraudops simulate`` end to end through the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from fraudops.cli import app

SMALL_ARGS = ["--customers", "100", "--terminals", "200", "--days", "10", "--seed", "3"]
JSON_KEYS = {
    "transactions",
    "frauds",
    "fraud_rate",
    "frauds_by_scenario",
    "customers",
    "terminals",
    "days",
    "start",
    "seed",
    "seconds",
    "path",
}


def _read(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        return pd.read_csv(path)
    return pd.read_json(path, lines=True)


@pytest.mark.parametrize("file_format", ["parquet", "csv", "jsonl"])
def test_json_summary_describes_the_written_file(tmp_path: Path, file_format: str) -> None:
    """--json prints the summary keys, and they describe the file written in the chosen format."""
    result = CliRunner().invoke(
        app, ["simulate", "--out", str(tmp_path), *SMALL_ARGS, "--format", file_format, "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert set() == JSON_KEYS - set(summary)
    data = _read(Path(summary["path"]))
    assert tmp_path / f"transactions.{file_format}" == Path(summary["path"])
    assert (len(data), int(data["TX_FRAUD"].sum())) == (summary["transactions"], summary["frauds"])
    expected = {"customers": 100, "terminals": 200, "days": 10, "start": "2018-04-01", "seed": 3}
    assert expected == {k: summary[k] for k in expected}
    assert sum(summary["frauds_by_scenario"].values()) == summary["frauds"]


def test_scenario_option_enables_extras(tmp_path: Path) -> None:
    """--scenario is repeatable and each one shows up in the per-scenario counts."""
    args = ["--scenario", "card_testing", "--scenario", "account_takeover", "--days", "60"]
    result = CliRunner().invoke(
        app,
        [
            "simulate",
            "--out",
            str(tmp_path),
            *args,
            "--customers",
            "100",
            "--terminals",
            "200",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    by_scenario = json.loads(result.stdout)["frauds_by_scenario"]
    assert {"card_testing", "account_takeover"} <= set(by_scenario)
    assert by_scenario["card_testing"] > 0
    assert by_scenario["account_takeover"] > 0


def test_unknown_scenario_exits_2_with_a_message(tmp_path: Path) -> None:
    """An unknown scenario name is a one-line error and exit code 2, and nothing is written."""
    result = CliRunner().invoke(
        app, ["simulate", "--out", str(tmp_path / "out"), *SMALL_ARGS, "--scenario", "skimming"]
    )
    assert result.exit_code == 2
    assert "unknown scenario skimming" in result.stderr
    assert not (tmp_path / "out").exists()


def test_bad_start_date_exits_2(tmp_path: Path) -> None:
    """A start that is not YYYY-MM-DD is a clear error."""
    result = CliRunner().invoke(
        app, ["simulate", "--out", str(tmp_path), *SMALL_ARGS, "--start", "April 1st"]
    )
    assert result.exit_code == 2
    assert "--start" in result.stderr


def test_human_summary_names_counts_and_path(tmp_path: Path) -> None:
    """Without --json a short summary with the count and the file goes to stderr."""
    result = CliRunner().invoke(app, ["simulate", "--out", str(tmp_path), *SMALL_ARGS])
    assert result.exit_code == 0, result.output
    n_rows = len(pd.read_parquet(tmp_path / "transactions.parquet"))
    text = " ".join(result.stderr.split())
    assert f"Wrote {n_rows:,} transactions" in text
    assert "transactions.parquet" in text
    assert not result.stdout
