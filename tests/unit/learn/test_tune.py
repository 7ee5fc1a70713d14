"""Hyperparameter tuning: objectives, resuming a stored study, the time budget, pruning and
the record of every trial as an MLflow run."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest

from fraudops.errors import InputError
from fraudops.learn.pipeline import DEFAULT_PIPELINE, read_hyperparameters, with_hyperparameters
from fraudops.learn.protocol import Fold, prequential_folds
from fraudops.learn.tracking import MlflowTracker, TrialRecord
from fraudops.learn.tune import (
    CostModel,
    Objective,
    TuneResult,
    expected_cost_at_best_threshold,
    threshold_pair_cost,
    tune,
)
from tests.unit.learn.conftest import FEATURES
from tests.unit.learn.mlflow_store import fresh_mlflow_db

FOLDS = prequential_folds(date(2018, 1, 15), n_folds=2)
"""Two folds inside the synthetic table's six weeks."""


def small_space(trial: optuna.Trial) -> dict[str, Any]:
    """A search space small enough to fit in milliseconds on the synthetic table."""
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.05, 0.3, log=True),
        "num_boost_round": trial.suggest_int("num_boost_round", 10, 40, step=10),
        "num_leaves": trial.suggest_int("num_leaves", 3, 15),
        # Up to more rows than a week holds: such a model cannot split, so some trials
        # are bad enough to prune.
        "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 5, 5000, log=True),
        "max_bin": trial.suggest_categorical("max_bin", [63, 255]),
    }


def run(
    frame: pd.DataFrame,
    storage: Path,
    *,
    objective: Objective = "average_precision",
    n_trials: int = 3,
    folds: list[Fold] = FOLDS,
    **options: Any,
) -> TuneResult:
    """Tune the synthetic table with the small space."""
    return tune(
        frame,
        folds,
        feature_names=FEATURES,
        objective=objective,
        n_trials=n_trials,
        time_budget_s=options.pop("time_budget_s", 600.0),
        storage_path=storage,
        space=options.pop("space", small_space),
        **options,
    )


@pytest.mark.parametrize(
    ("objective", "direction"),
    [
        ("average_precision", "maximize"),
        ("card_precision_at_100", "maximize"),
        ("expected_cost", "minimize"),
    ],
)
def test_each_objective_finds_its_best_trial(
    feature_table: pd.DataFrame, tmp_path: Path, objective: Objective, direction: str
) -> None:
    """The best value is the best completed trial's mean over folds, in the right direction."""
    result = run(feature_table, tmp_path / "study.db", objective=objective)
    completed = [t for t in result.trials if t.state == "complete"]
    values = [t.value for t in completed if t.value is not None]
    best = max(values) if direction == "maximize" else min(values)
    assert (objective, direction, 3, best) == (
        result.objective,
        result.direction,
        len(completed),
        result.best_value,
    )
    winners = [t for t in completed if t.value == best]
    assert result.best_params in [t.params for t in winners]
    winner = winners[0]
    assert pytest.approx(sum(winner.fold_values) / 2) == winner.value
    assert [objective] * 2 == [
        key for fold in winner.fold_metrics for key in fold if key == objective
    ]


def test_best_params_merge_into_the_fixed_hyperparameters(
    feature_table: pd.DataFrame, tmp_path: Path
) -> None:
    """The result's hyperparameters keep the monotone constraints and take the best trial's."""
    result = run(feature_table, tmp_path / "study.db", n_trials=2)
    merged = result.hyperparameters
    assert result.best_params == {key: merged[key] for key in result.best_params}
    assert ["amount"] == [name for name in merged["monotone_increasing"] if name in FEATURES]


def test_a_second_call_continues_the_stored_study(
    feature_table: pd.DataFrame, tmp_path: Path
) -> None:
    """The same study name in the same file adds trials, and proposes new hyperparameters."""
    first = run(feature_table, tmp_path / "study.db", n_trials=2)
    second = run(feature_table, tmp_path / "study.db", n_trials=2)
    assert ([0, 1], [0, 1, 2, 3], 2) == (
        [t.number for t in first.trials],
        [t.number for t in second.trials],
        second.new_trials,
    )
    first_params = [t.params for t in second.trials[:2]]
    assert all(t.params not in first_params for t in second.trials[2:])


def test_a_study_is_not_continued_on_other_folds(
    feature_table: pd.DataFrame, tmp_path: Path
) -> None:
    """Resuming with different folds would mix incomparable values: it is refused."""
    run(feature_table, tmp_path / "study.db", n_trials=1)
    with pytest.raises(InputError, match="was tuned with folds"):
        run(feature_table, tmp_path / "study.db", n_trials=1, folds=FOLDS[:1])


class SteppedTimer:
    """A timer that moves only when the search space is asked for a trial's parameters."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        return self.now

    def space(self, trial: optuna.Trial) -> dict[str, Any]:
        """Ten seconds pass as each trial starts."""
        self.now += self.step
        return small_space(trial)


def test_the_time_budget_stops_the_study_between_folds(
    feature_table: pd.DataFrame, tmp_path: Path
) -> None:
    """A trial still running when the budget runs out stops before its next fold.

    Each trial starts 10 s after the last; the budget of 25 s lets two trials finish and
    stops the third before its first fold.
    """
    timer = SteppedTimer(step=10.0)
    result = run(
        feature_table,
        tmp_path / "study.db",
        n_trials=100,
        time_budget_s=25.0,
        space=timer.space,
        timer=timer,
    )
    assert (["complete", "complete", "stopped"], [2, 2, 0], "time_budget", 3) == (
        [t.state for t in result.trials],
        [len(t.fold_values) for t in result.trials],
        result.stopped_by,
        result.new_trials,
    )


def test_the_time_budget_holds_on_the_wall_clock(
    feature_table: pd.DataFrame, tmp_path: Path
) -> None:
    """With far more trials asked than a second allows, the budget is what ends the study."""
    result = run(feature_table, tmp_path / "study.db", n_trials=10_000, time_budget_s=1.0)
    assert "time_budget" == result.stopped_by
    assert result.new_trials < 10_000


@pytest.mark.slow
def test_trials_worse_than_the_median_are_pruned(
    feature_table: pd.DataFrame, tmp_path: Path
) -> None:
    """After the first five trials, one already below the median after a fold stops there."""
    result = run(feature_table, tmp_path / "study.db", n_trials=8)
    pruned = [t for t in result.trials if t.state == "pruned"]
    assert pruned, "expected the bad half of the space to be pruned"
    assert all(len(t.fold_values) < len(FOLDS) for t in pruned)
    assert all(t.number >= 5 for t in pruned)
    assert result.best_value is not None


def test_a_failing_trial_is_recorded_as_failed(feature_table: pd.DataFrame, tmp_path: Path) -> None:
    """An error inside a trial propagates, and the stored trial is FAIL, not left running."""

    def broken(trial: optuna.Trial) -> dict[str, Any]:
        trial.suggest_int("num_leaves", 3, 15)
        raise RuntimeError("broken space")

    with pytest.raises(RuntimeError, match="broken space"):
        run(feature_table, tmp_path / "study.db", n_trials=1, space=broken)
    study = optuna.load_study(
        study_name="lgbm-average_precision", storage=f"sqlite:///{tmp_path / 'study.db'}"
    )
    assert [optuna.trial.TrialState.FAIL] == [t.state for t in study.trials]


class RecordingTracker:
    """A tracker that keeps what it is told."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def study_started(self, study: str, settings: Mapping[str, Any]) -> None:
        self.events.append(("started", study))

    def trial_finished(self, trial: TrialRecord) -> None:
        self.events.append(("trial", trial.number))

    def study_finished(self, summary: Mapping[str, Any]) -> None:
        self.events.append(("finished", summary["new_trials"]))


def test_the_tracker_hears_every_trial_in_order(
    feature_table: pd.DataFrame, tmp_path: Path
) -> None:
    """A study's session opens, reports each trial as it ends, and closes with its summary."""
    tracker = RecordingTracker()
    run(feature_table, tmp_path / "study.db", n_trials=3, tracker=tracker, study_name="s")
    expected = [("started", "s"), ("trial", 0), ("trial", 1), ("trial", 2), ("finished", 3)]
    assert expected == tracker.events


@pytest.mark.slow
def test_each_trial_is_an_mlflow_run_under_the_session_run(
    feature_table: pd.DataFrame, tmp_path: Path
) -> None:
    """Trials are child runs of one parent per session, with params, fold metrics and state."""
    uri = fresh_mlflow_db(tmp_path / "mlflow")
    tracker = MlflowTracker(uri, tmp_path / "mlflow" / "artifacts")
    result = run(feature_table, tmp_path / "study.db", n_trials=8, tracker=tracker)
    client = tracker._mlflow()
    experiment = client.get_experiment_by_name("tune/lgbm-average_precision")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    [parent] = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = sorted(
        (r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id),
        key=lambda r: int(r.data.tags["trial_number"]),
    )
    status = {"complete": "FINISHED", "pruned": "KILLED"}
    assert "pruned" in [t.state for t in result.trials]
    assert [(t.state, status[t.state]) for t in result.trials] == [
        (r.data.tags["trial_state"], r.info.status) for r in children
    ]
    first, trial = children[0], result.trials[0]
    assert {key: str(value) for key, value in trial.params.items()} == first.data.params
    assert trial.value == first.data.metrics["objective_value"]
    assert trial.fold_metrics[1]["roc_auc"] == first.data.metrics["fold_1.roc_auc"]
    assert (result.best_value, "FINISHED") == (
        parent.data.metrics["best_value"],
        parent.info.status,
    )


def test_the_cost_objective_minimises_the_fold_cost_it_is_given(
    feature_table: pd.DataFrame, tmp_path: Path
) -> None:
    """A plugged-in fold cost is what each fold reports and what the best trial minimises."""
    seen: list[float] = []

    def one_minus_top_score(frame: pd.DataFrame, scores: Any) -> float:
        seen.append(1.0 - float(max(scores)))
        return seen[-1]

    result = run(
        feature_table, tmp_path / "study.db", objective="expected_cost", cost=one_minus_top_score
    )
    assert seen == [v for t in result.trials for v in t.fold_values]
    assert min(t.value for t in result.trials if t.value is not None) == result.best_value


def test_the_policy_threshold_choice_plugs_in_as_the_cost(
    feature_table: pd.DataFrame, tmp_path: Path
) -> None:
    """thresholds.choose_thresholds, within a review capacity, serves as the fold cost."""
    result = run(
        feature_table,
        tmp_path / "study.db",
        objective="expected_cost",
        n_trials=1,
        cost=threshold_pair_cost(daily_review_capacity=20),
    )
    [trial] = result.trials
    assert ("complete", 2) == (trial.state, len(trial.fold_values))
    assert all(0.0 <= value for value in trial.fold_values)


def test_expected_cost_takes_the_cheapest_threshold() -> None:
    """Flagging the top three of four costs least here: 9 in reviews + 5 for one genuine."""
    frame = pd.DataFrame({"is_fraud": [1, 0, 1, 0], "amount": [100.0, 50.0, 20.0, 10.0]})
    costs = CostModel(missed_fraud_multiple=1.0, review_cost=3.0, false_decline_cost=5.0)
    # flag none 120, top 1: 20 + 3, top 2: 20 + 6 + 5, top 3: 9 + 5, all: 12 + 10
    assert 14 / 4 == expected_cost_at_best_threshold(frame, [0.9, 0.8, 0.3, 0.1], costs)


def test_expected_cost_cannot_split_tied_scores() -> None:
    """Transactions on the same score share the threshold: all of them or none."""
    frame = pd.DataFrame({"is_fraud": [1, 0, 0], "amount": [100.0, 50.0, 50.0]})
    costs = CostModel(missed_fraud_multiple=1.0, review_cost=10.0, false_decline_cost=50.0)
    # The fraud ties with a genuine payment: flagging both costs 20 + 50, missing it 100.
    assert 70 / 3 == expected_cost_at_best_threshold(frame, [0.9, 0.9, 0.1], costs)


def test_expected_cost_may_flag_nothing() -> None:
    """When reviews cost more than the frauds they would catch, flagging nothing is best."""
    frame = pd.DataFrame({"is_fraud": [1, 0], "amount": [2.0, 50.0]})
    assert 1.0 == expected_cost_at_best_threshold(frame, [0.9, 0.1], CostModel())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"objective": "roc_auc"}, "unknown objective"),
        ({"n_trials": 0}, "n_trials must be at least 1"),
        ({"time_budget_s": 0.0}, "time_budget_s must be positive"),
        ({"folds": []}, "at least one validation fold"),
    ],
)
def test_unusable_settings_are_refused(
    feature_table: pd.DataFrame, tmp_path: Path, options: dict[str, Any], message: str
) -> None:
    """Each unusable setting fails before any trial, naming what was wrong."""
    with pytest.raises(InputError, match=message):
        run(feature_table, tmp_path / "study.db", **options)


def bagging_space(trial: optuna.Trial) -> dict[str, Any]:
    """The small space with a bagging fraction below 1, as the default space can propose."""
    return {
        **small_space(trial),
        "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 0.9),
    }


def test_a_tuned_result_trains_what_its_trial_trained(
    feature_table: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hyperparameters a trial fitted with are exactly those `train --hyperparameters`
    gives the LightGBM member from the result's best_params: bagging_freq included."""
    from fraudops.learn.members import LightGBMLearner
    from fraudops.learn.train import fit_booster

    seen: list[dict[str, Any]] = []

    def recording_fit(features: Any, labels: Any, hyperparameters: Mapping[str, Any]) -> Any:
        seen.append(dict(hyperparameters))
        return fit_booster(features, labels, hyperparameters)

    monkeypatch.setattr("fraudops.learn.tune.fit_booster", recording_fit)
    result = run(feature_table, tmp_path / "study.db", n_trials=1, space=bagging_space)
    trained = with_hyperparameters(DEFAULT_PIPELINE, result.best_params).learners[0]
    assert isinstance(trained, LightGBMLearner)
    assert (seen[0], 1) == (trained.hyperparameters, trained.hyperparameters["bagging_freq"])


def test_an_empty_result_has_no_hyperparameters(tmp_path: Path) -> None:
    """A result without a finished trial refuses to give hyperparameters, not the defaults."""
    result = TuneResult(
        "s", "sqlite://", "average_precision", "maximize", {}, None, [], 0, "time_budget", 1.0
    )
    with pytest.raises(InputError, match="no trial has finished"):
        _ = result.hyperparameters


@pytest.mark.parametrize(
    ("document", "named"),
    [
        ({"best_params": {}}, "no tuning trial finished"),
        ({"learning_rat": 0.1}, "learning_rat"),
        ({"num_boost_round": -5}, "num_boost_round"),
        ({}, "no hyperparameters given"),
    ],
)
def test_a_hyperparameter_file_is_checked_when_read(
    tmp_path: Path, document: dict[str, Any], named: str
) -> None:
    """An empty tuning result, a typo or a bad value in the file is refused at once."""
    path = tmp_path / "tuned.json"
    path.write_text(json.dumps(document))
    with pytest.raises(InputError, match=named):
        read_hyperparameters(path)


@pytest.mark.parametrize("kind", ["directory", "not a database"])
def test_a_storage_that_is_no_sqlite_file_is_refused(
    feature_table: pd.DataFrame, tmp_path: Path, kind: str
) -> None:
    """A directory or a file of another kind as the study's storage is an InputError."""
    storage = tmp_path / "storage"
    if kind == "directory":
        storage.mkdir()
    else:
        storage.write_text("{}")
    with pytest.raises(InputError, match="--storage"):
        run(feature_table, storage, n_trials=1)
