"""Train and evaluate end to end on a tiny simulated lake, through the library and the CLI."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fraudops.cli import app
from fraudops.errors import NotEnoughDataError
from fraudops.learn.artifact import load_model_dir
from fraudops.learn.jobs import evaluate_model, train_model
from tests.conftest import TINY_TRAIN_START, TrainedLake


def test_saved_model_round_trips(trained_lake: TrainedLake) -> None:
    """The model directory loads back with the report's version, window and metrics."""
    manifest = load_model_dir(trained_lake.model_dir).manifest
    report = trained_lake.report
    expected = (report.model_version, TINY_TRAIN_START, date(2018, 5, 26), report.means, 2)
    assert expected == (
        manifest.model_version,
        manifest.train_start,
        manifest.train_end,
        manifest.metrics.mean,
        len(manifest.metrics.folds),
    )


def test_model_version_carries_the_clock_date(trained_lake: TrainedLake) -> None:
    """The version is dated by the injected clock, not the wall clock."""
    assert trained_lake.report.model_version.startswith("lgbm-20180701-")


def test_evaluate_reproduces_the_latest_fold(trained_lake: TrainedLake) -> None:
    """Evaluating the saved model on its default window gives fold 0's training metrics."""
    evaluated = evaluate_model(trained_lake.lake, trained_lake.model_dir)
    assert trained_lake.report.folds[0].as_dict() == evaluated.folds[0].as_dict()


def test_model_beats_a_random_scorer(trained_lake: TrainedLake) -> None:
    """Every fold ranks fraud far above chance: AUC over 0.6, AP over twice the fraud rate."""
    folds = trained_lake.report.folds
    rates = [f.test_frauds / f.test_transactions for f in folds]
    expected = [True] * len(folds)
    assert expected == [
        f.metrics.roc_auc > 0.6 and f.metrics.average_precision > 2 * rate
        for f, rate in zip(folds, rates, strict=True)
    ]


def test_window_outside_the_lake_is_named(trained_lake: TrainedLake, tmp_path: Path) -> None:
    """Training on days the lake does not hold is a NotEnoughDataError naming those days.

    They start a week before the training window: the calibration week's members train there.
    """
    with pytest.raises(NotEnoughDataError, match="2018-12-25 to 2019-01-21"):
        train_model(trained_lake.lake, tmp_path / "m", train_start=date(2019, 1, 1))


def test_evaluate_window_outside_the_lake_is_named(trained_lake: TrainedLake) -> None:
    """An empty test window is a NotEnoughDataError naming the window."""
    with pytest.raises(NotEnoughDataError, match=r"test window 2018-07-01…2018-07-07"):
        evaluate_model(trained_lake.lake, trained_lake.model_dir, test_start=date(2018, 7, 1))


REPORT_KEYS = {
    "roc_auc",
    "average_precision",
    "card_precision_at_100",
    "false_positives_at_recall_50",
    "false_positives_at_recall_70",
    "false_positives_at_recall_80",
    "std",
    "folds",
    "model_dir",
    "model_version",
    "feature_definition_hash",
    "seconds",
    "warnings",
}
DETAIL_KEYS = {"members", "combiner", "calibration", "thresholds", "threshold_folds", "policy_file"}
FOLD_KEYS = {
    "fold",
    "train_start",
    "train_end",
    "test_start",
    "test_end",
    "train_transactions",
    "train_frauds",
    "test_transactions",
    "test_frauds",
    "removed_known_cards",
} | (
    REPORT_KEYS
    - {
        "std",
        "folds",
        "model_dir",
        "model_version",
        "feature_definition_hash",
        "seconds",
        "warnings",
    }
)


def test_cli_train_prints_the_json_contract(trained_lake: TrainedLake, tmp_path: Path) -> None:
    """`fraudops train --json` prints the report keys, per-fold keys and writes the model."""
    result = CliRunner().invoke(
        app,
        [
            "train",
            "--lake",
            str(trained_lake.lake),
            "--out",
            str(tmp_path / "m"),
            "--train-start",
            "2018-05-20",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    expected = (REPORT_KEYS | DETAIL_KEYS, FOLD_KEYS, True)
    assert expected == (
        set(report),
        set(report["folds"][0]),
        (tmp_path / "m" / "manifest.json").is_file(),
    )


def test_cli_evaluate_without_model_fails_cleanly(
    trained_lake: TrainedLake, tmp_path: Path
) -> None:
    """A missing model directory exits with code 2 and a one-line reason, no traceback."""
    result = CliRunner().invoke(
        app, ["evaluate", "--lake", str(trained_lake.lake), "--model", str(tmp_path / "none")]
    )
    expected = (2, True)
    assert expected == (result.exit_code, "no model at" in result.output)


def test_cli_rejects_a_malformed_date(trained_lake: TrainedLake, tmp_path: Path) -> None:
    """A --train-start that is not a date is an input error naming the option."""
    result = CliRunner().invoke(
        app,
        [
            "train",
            "--lake",
            str(trained_lake.lake),
            "--out",
            str(tmp_path),
            "--train-start",
            "15/08",
        ],
    )
    expected = (2, True)
    assert expected == (result.exit_code, "--train-start" in result.output)


def test_cli_evaluate_prints_a_table(trained_lake: TrainedLake) -> None:
    """Without --json, evaluate draws a table of every metric with mean ± std."""
    result = CliRunner().invoke(
        app, ["evaluate", "--lake", str(trained_lake.lake), "--model", str(trained_lake.model_dir)]
    )
    expected = (0, True, True)
    assert expected == (
        result.exit_code,
        "card precision @100" in result.output,
        "mean ± std" in result.output,
    )
