"""What `fraudops train`, `evaluate` and `tune` refuse up front, and how they say it."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fraudops.cli import app
from fraudops.errors import InputError, NotEnoughDataError
from fraudops.learn.jobs import evaluate_model, train_model
from tests.conftest import TrainedLake
from tests.unit.learn.mlflow_store import fresh_mlflow_db

runner = CliRunner()


def train_args(trained_lake: TrainedLake, out: Path, *more: str) -> list[str]:
    """`fraudops train` on the tiny lake into ``out``."""
    return [
        "train",
        "--lake",
        str(trained_lake.lake),
        "--out",
        str(out),
        "--train-start",
        "2018-05-20",
        *more,
    ]


def test_train_refuses_to_write_the_model_into_its_lake(trained_lake: TrainedLake) -> None:
    """--out the lake is refused before training, and the lake is left whole."""
    before = sorted(p.name for p in trained_lake.lake.iterdir())
    result = runner.invoke(app, train_args(trained_lake, trained_lake.lake))
    assert (2, True, before) == (
        result.exit_code,
        "cannot be written into the lake" in result.output,
        sorted(p.name for p in trained_lake.lake.iterdir()),
    )


@pytest.mark.parametrize("option", ["--report", "--policy-out"])
def test_an_output_file_that_is_a_directory_is_refused_before_training(
    trained_lake: TrainedLake, tmp_path: Path, option: str
) -> None:
    """A directory given as the report or policy file fails at once; no model is written."""
    (tmp_path / "adir").mkdir()
    result = runner.invoke(
        app, train_args(trained_lake, tmp_path / "m", option, str(tmp_path / "adir"))
    )
    assert (2, True, False) == (
        result.exit_code,
        f"{option} {tmp_path / 'adir'}: is a directory" in result.output,
        (tmp_path / "m").exists(),
    )


def test_a_typo_in_the_hyperparameters_is_refused(
    trained_lake: TrainedLake, tmp_path: Path
) -> None:
    """A misspelt hyperparameter is a one-line error naming it, not a model of the defaults."""
    tuned = tmp_path / "tuned.json"
    tuned.write_text(json.dumps({"learning_rat": 0.1}))
    result = runner.invoke(
        app, train_args(trained_lake, tmp_path / "m", "--hyperparameters", str(tuned))
    )
    assert (2, True, 1) == (
        result.exit_code,
        "learning_rat: unknown hyperparameter" in result.output,
        len(result.output.strip().splitlines()),
    )


def test_the_report_writer_creates_missing_folders(
    trained_lake: TrainedLake, tmp_path: Path
) -> None:
    """--report in folders that do not exist yet writes the report there."""
    report = tmp_path / "no" / "such" / "report.html"
    result = runner.invoke(
        app, train_args(trained_lake, tmp_path / "m", "--report", str(report), "--json")
    )
    assert (0, True) == (result.exit_code, report.is_file()), result.output


def test_a_test_window_overlapping_the_training_is_refused(trained_lake: TrainedLake) -> None:
    """Testing on the model's own training days would be in-sample: it is refused."""
    with pytest.raises(InputError, match="overlaps the model's training window"):
        evaluate_model(trained_lake.lake, trained_lake.model_dir, test_start=date(2018, 5, 15))


def test_a_test_window_before_the_training_is_measured_with_a_warning(
    trained_lake: TrainedLake,
) -> None:
    """A week before the training window holds its transactions, not zero, and says so."""
    report = evaluate_model(trained_lake.lake, trained_lake.model_dir, test_start=date(2018, 5, 1))
    fold = report.folds[0]
    assert (True, date(2018, 5, 1), date(2018, 5, 7), True) == (
        fold.test_transactions > 1000,
        fold.fold.test_start,
        fold.fold.test_end,
        "before the model's training window" in " ".join(report.warnings),
    )


def test_a_test_window_past_the_lake_reports_the_days_measured(
    trained_lake: TrainedLake,
) -> None:
    """A window reaching past the lake's last day (06-09) is cut there, with a warning."""
    report = evaluate_model(trained_lake.lake, trained_lake.model_dir, test_start=date(2018, 6, 5))
    fold = report.folds[0].fold
    assert ((date(2018, 6, 5), date(2018, 6, 9)), True) == (
        (fold.test_start, fold.test_end),
        "(5 of 7 days) is measured" in " ".join(report.warnings),
    )


def test_a_calibration_week_before_the_lake_is_named(
    trained_lake: TrainedLake, tmp_path: Path
) -> None:
    """Training from the lake's first day fails naming the calibration week before it and
    the earliest training start the lake can serve."""
    with pytest.raises(NotEnoughDataError) as caught:
        train_model(trained_lake.lake, tmp_path / "m", train_start=date(2018, 4, 1))
    message = str(caught.value)
    assert (True, True) == (
        message.startswith("the calibration week 2018-03-25…2018-03-31 (the 7 days before"),
        message.endswith("the earliest --train-start the lake can serve is 2018-04-08"),
    )


def test_windows_near_the_start_of_the_lake_are_warned_of(
    trained_lake: TrainedLake, tmp_path: Path
) -> None:
    """A calibration week partly before the lake, and features short of history, warn."""
    report = train_model(trained_lake.lake, tmp_path / "m", train_start=date(2018, 4, 3))
    assert (True, True) == (
        any("starts before the lake's first day 2018-04-01" in w for w in report.warnings),
        any("features miss part of their history" in w for w in report.warnings),
    )


def test_tune_refuses_a_registry_that_is_a_file(trained_lake: TrainedLake, tmp_path: Path) -> None:
    """--registry naming a file is a one-line error before any feature is built."""
    (tmp_path / "afile").write_text("")
    result = runner.invoke(
        app,
        [
            "tune",
            "--lake",
            str(trained_lake.lake),
            "--registry",
            str(tmp_path / "afile"),
            "--storage",
            str(tmp_path / "t.db"),
        ],
    )
    assert (2, True) == (result.exit_code, "is a file, not a registry" in result.output)


def test_error_messages_are_printed_verbatim_on_one_line(
    trained_lake: TrainedLake, tmp_path: Path
) -> None:
    """Brackets in a message are text, not markup, and a long message is not wrapped."""
    model = tmp_path / ("x" * 100) / "[bold]v1[/]"
    result = runner.invoke(
        app, ["evaluate", "--lake", str(trained_lake.lake), "--model", str(model)]
    )
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert (2, [f"error: no model at {model}: not a directory"]) == (result.exit_code, lines)


def test_piped_tables_are_not_cut_at_80_columns(trained_lake: TrainedLake) -> None:
    """Without a terminal, the table keeps whole dates in its fold columns."""
    result = runner.invoke(
        app, ["evaluate", "--lake", str(trained_lake.lake), "--model", str(trained_lake.model_dir)]
    )
    assert (0, True) == (result.exit_code, "2018-06-03…2018-06-09" in result.output)


def test_the_report_names_a_pipeline_trained_with_given_hyperparameters(
    trained_lake: TrainedLake, tmp_path: Path
) -> None:
    """With --hyperparameters the handbook table does not call the run the default pipeline."""
    tuned = tmp_path / "tuned.json"
    tuned.write_text(json.dumps({"best_params": {"learning_rate": 0.05}}))
    report = tmp_path / "report.html"
    args = train_args(
        trained_lake, tmp_path / "m", "--hyperparameters", str(tuned), "--report", str(report)
    )
    result = runner.invoke(app, [*args, "--json"])
    html = report.read_text(encoding="utf-8")
    assert (0, False, True) == (
        result.exit_code,
        "fraudops default pipeline" in html,
        "fraudops pipeline with the given hyperparameters" in html,
    )


def test_train_register_prints_the_version_without_json(
    trained_lake: TrainedLake, tmp_path: Path
) -> None:
    """The human output of `train --register` names the registered version."""
    fresh_mlflow_db(tmp_path / "registry")
    args = train_args(
        trained_lake, tmp_path / "m", "--register", "--registry", str(tmp_path / "registry")
    )
    result = runner.invoke(app, args)
    assert (0, True) == (result.exit_code, "registered as version 1" in result.output), (
        result.output
    )
