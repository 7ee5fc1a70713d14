"""The training pipeline end to end on the tiny lake: what it ships is what it measured."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fraudops.cli import app
from fraudops.clock import ManualClock
from fraudops.decide.ensemble_scorer import EnsembleScorer, load_scorer
from fraudops.decide.policy import Policy
from fraudops.errors import ModelError
from fraudops.learn.artifact import load_model_dir
from fraudops.learn.dataset import feature_definition, load_feature_table
from fraudops.learn.jobs import POLICY_FILE, evaluate_model, train_model
from fraudops.learn.members import LightGBMLearner, LogisticLearner
from fraudops.learn.pipeline import PipelineConfig, earliest_day, run_pipeline
from fraudops.learn.protocol import prequential_folds
from fraudops.learn.report import Report
from tests.conftest import TINY_TRAIN_START, TrainedLake

ENSEMBLE = PipelineConfig(
    learners=(LightGBMLearner(), LogisticLearner()),
    combiner="rank_average",
    calibration="platt",
    daily_review_capacity=20,
)


@pytest.fixture(scope="module")
def ensemble_model(trained_lake: TrainedLake, tmp_path_factory: pytest.TempPathFactory) -> Report:
    """LightGBM and logistic regression, rank-averaged, trained on the tiny lake (2 folds)."""
    out = tmp_path_factory.mktemp("ensemble") / "model"
    return train_model(
        trained_lake.lake,
        out,
        train_start=TINY_TRAIN_START,
        n_folds=2,
        config=ENSEMBLE,
        clock=ManualClock(datetime(2018, 7, 1, tzinfo=UTC)),
    )


def test_platt_calibration_keeps_the_members_ranking(trained_lake: TrainedLake) -> None:
    """A single member calibrated by Platt ranks exactly as the member: same AUC, AP, CP@100."""
    report = trained_lake.report
    member = report.details["members"]["lightgbm"]
    keys = ("roc_auc", "average_precision", "card_precision_at_100")
    assert [member[k] for k in keys] == pytest.approx([report.means[k] for k in keys])


def test_served_model_scores_what_training_measured(
    trained_lake: TrainedLake, ensemble_model: Report
) -> None:
    """Scoring the saved ensemble (LightGBM natively, logistic via ONNX) reproduces fold 0."""
    evaluated = evaluate_model(trained_lake.lake, ensemble_model.model_dir)
    trained = ensemble_model.folds[0].metrics.as_dict()
    served = evaluated.folds[0].metrics.as_dict()
    assert [trained[k] for k in ("roc_auc", "average_precision")] == pytest.approx(
        [served[k] for k in ("roc_auc", "average_precision")], abs=1e-4
    )


def test_ensemble_directory_lists_members_and_exports(ensemble_model: Report) -> None:
    """The format-2 manifest names both members; only the non-LightGBM one carries ONNX."""
    manifest = load_model_dir(ensemble_model.model_dir).manifest
    expected = (2, "ens-", [("lightgbm", None), ("logistic", "members/logistic.onnx")])
    assert expected == (
        manifest.format,
        manifest.model_version[:4],
        [(m.name, m.onnx) for m in manifest.members],
    )


def test_one_row_equals_the_batch(trained_lake: TrainedLake, ensemble_model: Report) -> None:
    """The service's single-row path gives the batch path's probability for every row.

    Within float32 rounding: ONNX Runtime scores the logistic member in single precision.
    """
    scorer = load_scorer(ensemble_model.model_dir)
    rows = load_feature_table(
        trained_lake.lake, date(2018, 6, 3), date(2018, 6, 4), feature_definition(7)
    )[list(scorer.feature_names)].to_numpy(dtype=np.float64)[:200]
    np.testing.assert_allclose(
        scorer.score_batch(rows), [scorer.score(row) for row in rows], atol=1e-6
    )


def test_reasons_come_from_the_lightgbm_member(ensemble_model: Report) -> None:
    """An ensemble with a LightGBM member explains with its contributions, largest first."""
    scorer = load_scorer(ensemble_model.model_dir)
    row = np.full(len(scorer.feature_names), np.nan)
    row[scorer.feature_names.index("amount")] = 5000.0
    reasons = scorer.explain(row, top=3)
    assert (True, True) == (
        len(reasons) > 0,
        all(a.contribution >= b.contribution for a, b in itertools.pairwise(reasons)),
    )


def test_member_without_onnx_export_is_refused(ensemble_model: Report, tmp_path: Path) -> None:
    """A non-LightGBM member the service cannot score natively needs its ONNX file."""
    artifact = load_model_dir(ensemble_model.model_dir)
    broken = artifact.manifest.model_copy(
        update={"members": [m.model_copy(update={"onnx": None}) for m in artifact.manifest.members]}
    )
    with pytest.raises(ModelError, match=r"logistic.*no ONNX export"):
        EnsembleScorer.from_artifact(
            type(artifact)(path=artifact.path, manifest=broken, booster=artifact.booster)
        )


def test_policy_file_holds_the_chosen_thresholds(ensemble_model: Report) -> None:
    """The policy file beside the model carries the thresholds the report says were chosen."""
    policy = Policy.from_file(ensemble_model.model_dir / POLICY_FILE)
    chosen = ensemble_model.details["thresholds"]
    assert (chosen["review_threshold"], chosen["decline_threshold"]) == (
        policy.review_threshold,
        policy.decline_threshold,
    )


def test_capacity_bounds_the_reviews_chosen(ensemble_model: Report) -> None:
    """With a capacity of 20 reviews a day the thresholds review at most 20 a day."""
    assert ensemble_model.details["thresholds"]["reviews_per_day"] <= 20


def test_members_alone_are_reported_beside_the_ensemble(ensemble_model: Report) -> None:
    """The report measures each member alone on the same rows, so a useless ensemble shows."""
    assert {"lightgbm", "logistic"} == set(ensemble_model.details["members"])


def test_rank_average_reference_is_the_delay_window(trained_lake: TrainedLake) -> None:
    """The deployed combiner's reference is the unlabelled week between training and test."""
    folds = prequential_folds(TINY_TRAIN_START, n_folds=1)
    definition = feature_definition(7)
    frame = load_feature_table(
        trained_lake.lake, earliest_day(folds), folds[0].test_end, definition
    )
    run = run_pipeline(frame, folds, definition.names, ENSEMBLE)
    fold = folds[0]
    delay = frame[(frame["ts"] >= fold.train_window[1]) & (frame["ts"] < fold.test_window[0])]
    model = run.latest.model
    quantiles = model.combiner.quantiles(model.member_scores(delay))  # type: ignore[attr-defined]
    # On its own reference rows each member's quantiles average one half.
    np.testing.assert_allclose(quantiles.mean(axis=0), 0.5, atol=0.01)


def test_cli_train_writes_report_and_policy(trained_lake: TrainedLake, tmp_path: Path) -> None:
    """`fraudops train --report` writes the HTML report, the policy file and the baselines."""
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
            "--report",
            str(tmp_path / "report.html"),
            "--policy-out",
            str(tmp_path / "policy.yaml"),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    html = (tmp_path / "report.html").read_text()
    expected = ({"logistic_regression", "xgboost"}, True, True)
    assert expected == (
        set(report["baselines"]),
        "Against the handbook" in html,
        Policy.from_file(tmp_path / "policy.yaml").decline_threshold <= 1.0,
    )
