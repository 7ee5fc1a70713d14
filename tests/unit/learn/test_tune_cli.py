"""``fraudops tune`` on the command line: JSON result, trials tracked in MLflow, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fraudops.cli import app
from fraudops.learn.tracking import mlflow_client
from tests.conftest import TINY_TRAIN_START, TrainedLake
from tests.unit.learn.mlflow_store import fresh_mlflow_db

runner = CliRunner()


@pytest.mark.slow
def test_tune_prints_its_result_and_tracks_each_trial(
    trained_lake: TrainedLake, tmp_path: Path
) -> None:
    """``--json`` prints the study's result; each trial is a run in the study's experiment."""
    uri = fresh_mlflow_db(tmp_path / "registry")
    args = [
        "tune",
        "--lake",
        str(trained_lake.lake),
        "--objective",
        "cost",
        "--trials",
        "2",
        "--time-budget",
        "600",
        "--storage",
        str(tmp_path / "study.db"),
        "--registry",
        str(tmp_path / "registry"),
        "--train-start",
        TINY_TRAIN_START.isoformat(),
        "--folds",
        "1",
        "--json",
    ]
    result = runner.invoke(app, args)
    assert 0 == result.exit_code, result.output
    report = json.loads(result.stdout)
    expected_keys = {"best_params", "best_value", "objective", "trials", "completed", "pruned"}
    assert expected_keys <= set(report)
    assert ("expected_cost", "minimize", 2, 2) == (
        report["objective"],
        report["direction"],
        report["completed"],
        len(report["trials"]),
    )
    assert min(t["value"] for t in report["trials"]) == report["best_value"]
    client = mlflow_client(uri)
    experiment = client.get_experiment_by_name("tune/lgbm-expected_cost")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert ["trial 0", "trial 1"] == sorted(
        r.info.run_name for r in runs if "mlflow.parentRunId" in r.data.tags
    )


def test_a_bad_date_is_a_clean_error(tmp_path: Path) -> None:
    """A malformed --train-start exits 2 with a one-line message, not a traceback."""
    result = runner.invoke(
        app, ["tune", "--lake", str(tmp_path), "--train-start", "2018-13-01", "--no-track"]
    )
    assert (2, True) == (result.exit_code, "expected a date YYYY-MM-DD" in result.output)


def test_an_unknown_objective_is_a_usage_error(tmp_path: Path) -> None:
    """Only ap, cp100 and cost are objectives."""
    result = runner.invoke(app, ["tune", "--lake", str(tmp_path), "--objective", "auc"])
    assert 2 == result.exit_code
