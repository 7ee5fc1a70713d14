"""Tuning the LightGBM member's hyperparameters on the validation folds with Optuna.

A seeded TPE sampler proposes hyperparameters; each trial fits one model per fold and
reports the running mean of the objective after every fold, so a median pruner can stop a
trial that is already worse than most before it has paid for all its folds. The study lives
in a SQLite file: calling again with the same study name continues it. Monotone constraints
and the other fixed choices of ``train.HYPERPARAMETERS`` are kept; only the searched ones
move. Tune on validation folds only: the test weeks judge the result, never choose it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import optuna
import pandas as pd
import sqlalchemy.exc

from fraudops.errors import InputError, StoreError
from fraudops.learn.metrics import assess
from fraudops.learn.protocol import Fold, assessment_rows, training_rows
from fraudops.learn.thresholds import CostModel, choose_thresholds
from fraudops.learn.tracking import (
    Tracker,
    TrialRecord,
    TrialState,
    check_sqlite_file,
    no_tracking,
    one_line,
)
from fraudops.learn.train import HYPERPARAMETERS, fit_booster, hyperparameters_from
from fraudops.progress import Progress, no_progress

__all__ = [
    "OBJECTIVES",
    "CostModel",
    "Objective",
    "TrialRecord",
    "TuneResult",
    "check_storage",
    "expected_cost_at_best_threshold",
    "suggest_hyperparameters",
    "threshold_pair_cost",
    "tune",
]

Objective = Literal["average_precision", "card_precision_at_100", "expected_cost"]

OBJECTIVES: dict[str, Literal["maximize", "minimize"]] = {
    "average_precision": "maximize",
    "card_precision_at_100": "maximize",
    "expected_cost": "minimize",
}
"""Each objective and the direction that makes it better."""

PRUNER_STARTUP_TRIALS = 5
"""Trials that run all their folds before the median pruner may stop any."""


def suggest_hyperparameters(trial: optuna.Trial) -> dict[str, Any]:
    """The search space: hyperparameters that moved validation AP when hand-tuned, and more.

    ``max_bin`` stays categorical: it decides whether a split can fall exactly at an
    amount threshold, and 255 / 1023 / 4095 were the values that differed by hand.
    """
    params: dict[str, Any] = {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
        "num_boost_round": trial.suggest_int("num_boost_round", 50, 500, step=25),
        "num_leaves": trial.suggest_int("num_leaves", 4, 63, log=True),
        "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 10, 200, log=True),
        "max_bin": trial.suggest_categorical("max_bin", [255, 1023, 4095]),
        "feature_fraction": trial.suggest_float("feature_fraction", 0.5, 1.0),
        "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 1.0),
        "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 100.0, log=True),
    }
    # Only searched names: the trial's params are then the whole record of its choice, and
    # ``train.hyperparameters_from`` derives the rest (bagging_freq among them) for the
    # trial and for a model trained with the result alike.
    return params


# --- expected cost -----------------------------------------------------------------------


FoldCost = Callable[[pd.DataFrame, npt.NDArray[np.float64]], float]
"""The cost of one fold's test set (``is_fraud`` and ``amount`` columns) given its scores."""


def expected_cost_at_best_threshold(
    frame: pd.DataFrame, scores: npt.ArrayLike, costs: CostModel | None = None
) -> float:
    """The cost per transaction at the single review threshold that makes it least.

    Transactions scored at or above the threshold are held for review (each costs a review,
    and a genuine one also the false-decline cost); frauds below it cost their amount times
    the multiple. Every distinct score is tried as the threshold, and so is flagging nothing.
    The default tuning objective: exact, and a sort per fold. ``threshold_pair_cost`` gives
    the policy's own choice (review and decline thresholds, a review capacity) instead.
    """
    costs = costs or CostModel()
    values = np.asarray(scores, dtype=np.float64)
    n = len(values)
    if n == 0:
        raise InputError("expected cost needs at least one scored transaction")
    fraud = frame["is_fraud"].to_numpy(dtype=np.int8) == 1
    amount = frame["amount"].to_numpy(dtype=np.float64)
    order = np.argsort(-values, kind="stable")
    ranked = values[order]
    flagged_fraud_amount = np.cumsum(np.where(fraud[order], amount[order], 0.0))
    flagged_genuine = np.cumsum(~fraud[order])
    flagged = np.arange(1, n + 1)
    # Tied scores share a threshold: only the last of each run of ties is a choice.
    last_of_tie = np.r_[ranked[1:] != ranked[:-1], True]
    missed = float(amount[fraud].sum()) - flagged_fraud_amount[last_of_tie]
    cost = (
        costs.missed_fraud_multiple * missed
        + costs.review_cost * flagged[last_of_tie]
        + costs.false_decline_cost * flagged_genuine[last_of_tie]
    )
    flag_nothing = costs.missed_fraud_multiple * float(amount[fraud].sum())
    return float(min(flag_nothing, float(cost.min()))) / n


def threshold_pair_cost(
    costs: CostModel | None = None, daily_review_capacity: int | None = None
) -> FoldCost:
    """A fold cost from ``thresholds.choose_thresholds``: the least expected cost per
    transaction over (review, decline) threshold pairs within the daily review capacity,
    as the policy would choose them. Pass it as ``tune(cost=...)``."""

    def cost(frame: pd.DataFrame, scores: npt.NDArray[np.float64]) -> float:
        days = max(1, int(frame["ts"].dt.tz_convert("UTC").dt.date.nunique()))
        choice = choose_thresholds(
            scores,
            frame["is_fraud"].to_numpy(),
            frame["amount"].to_numpy(dtype=np.float64),
            days_covered=float(days),
            cost_model=costs,
            daily_review_capacity=daily_review_capacity,
        )
        return choice.expected_cost / len(frame)

    return cost


# --- the study ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TuneResult:
    """The best hyperparameters found so far in a study, and every trial it holds."""

    study_name: str
    storage: str
    objective: Objective
    direction: Literal["maximize", "minimize"]
    best_params: dict[str, Any]
    best_value: float | None
    trials: list[TrialRecord]
    new_trials: int
    stopped_by: Literal["trials", "time_budget"]
    seconds: float

    def count(self, state: TrialState) -> int:
        """Trials of the study (all sessions) that ended in ``state``."""
        return sum(1 for trial in self.trials if trial.state == state)

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The best trial's hyperparameters merged into the fixed ones, ready for fit_booster:
        what that trial trained with (``train.hyperparameters_from``)."""
        if not self.best_params:
            raise InputError(f"study {self.study_name!r}: no trial has finished yet")
        return hyperparameters_from(self.best_params)

    def trials_frame(self) -> pd.DataFrame:
        """The trials as a table: number, state, value, seconds, then one column per param."""
        rows = [
            {
                "number": t.number,
                "state": t.state,
                "value": t.value,
                "folds": len(t.fold_values),
                "seconds": t.seconds,
                **t.params,
            }
            for t in self.trials
        ]
        return pd.DataFrame(rows)

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON-ready values, keys in snake case."""
        return {
            "study": self.study_name,
            "storage": self.storage,
            "objective": self.objective,
            "direction": self.direction,
            "best_params": self.best_params,
            "best_value": self.best_value,
            "completed": self.count("complete"),
            "pruned": self.count("pruned"),
            "stopped": self.count("stopped"),
            "failed": self.count("failed"),
            "new_trials": self.new_trials,
            "stopped_by": self.stopped_by,
            "seconds": self.seconds,
            "trials": [trial.as_dict() for trial in self.trials],
        }


@dataclass(frozen=True, slots=True)
class _FoldData:
    fold: Fold
    train_x: pd.DataFrame
    train_y: npt.NDArray[np.int8]
    test: pd.DataFrame
    test_x: npt.NDArray[np.float64]


def _prepare(
    frame: pd.DataFrame, folds: Sequence[Fold], names: list[str], objective: Objective
) -> list[_FoldData]:
    needed = [*names, "amount"] if objective == "expected_cost" else names
    missing = [name for name in needed if name not in frame.columns]
    if missing:
        raise InputError(f"tune: the feature table lacks columns {sorted(set(missing))}")
    prepared = []
    for fold in folds:
        train = training_rows(frame, fold)
        test = assessment_rows(frame, fold).frame
        prepared.append(
            _FoldData(
                fold=fold,
                train_x=train[names],
                train_y=train["is_fraud"].to_numpy(dtype=np.int8),
                test=test,
                test_x=test[names].to_numpy(dtype=np.float64),
            )
        )
    return prepared


def _describe_folds(folds: Sequence[Fold]) -> list[str]:
    return [
        f"{f.train_start}…{f.train_end} +{f.delay_days}d → {f.test_start}…{f.test_end}"
        for f in folds
    ]


_STATES: dict[optuna.trial.TrialState, TrialState] = {
    optuna.trial.TrialState.COMPLETE: "complete",
    optuna.trial.TrialState.PRUNED: "pruned",
    optuna.trial.TrialState.FAIL: "failed",
    optuna.trial.TrialState.RUNNING: "running",
    optuna.trial.TrialState.WAITING: "running",
}


def _record(trial: optuna.trial.FrozenTrial) -> TrialRecord:
    state = _STATES[trial.state]
    if state == "failed" and trial.user_attrs.get("stopped") == "time_budget":
        state = "stopped"
    seconds = trial.user_attrs.get("seconds")
    return TrialRecord(
        number=trial.number,
        state=state,
        value=None if trial.value is None else float(trial.value),
        params=dict(trial.params),
        fold_values=[float(v) for v in trial.user_attrs.get("fold_values", [])],
        fold_metrics=list(trial.user_attrs.get("fold_metrics", [])),
        seconds=None if seconds is None else float(seconds),
    )


def check_storage(storage_path: Path) -> None:
    """Refuse a study storage that is not a SQLite file (or a place to create one)."""
    check_sqlite_file(storage_path, "--storage")
    for parent in storage_path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(f"--storage {storage_path}: {parent} is not a directory")
            break


def _open_study(
    storage_path: Path,
    study_name: str,
    objective: Objective,
    seed: int,
    identity: dict[str, Any],
) -> tuple[optuna.Study, str]:
    check_storage(storage_path)
    storage_path.parent.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{storage_path.resolve()}"
    try:
        study = optuna.create_study(
            storage=url,
            study_name=study_name,
            direction=OBJECTIVES[objective],
            load_if_exists=True,
            pruner=optuna.pruners.MedianPruner(n_startup_trials=PRUNER_STARTUP_TRIALS),
        )
    except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError) as exc:
        raise StoreError(f"study storage {storage_path}: {one_line(exc)}") from exc
    if not study.user_attrs:
        for key, value in identity.items():
            study.set_user_attr(key, value)
    else:
        for key, value in identity.items():
            if study.user_attrs.get(key) != value:
                raise InputError(
                    f"study {study_name!r} in {storage_path} was tuned with {key}"
                    f" {study.user_attrs.get(key)!r}, not {value!r}: name a new study"
                    " (--study) or use the same setup to continue it"
                )
    # A fresh sampler each session; seeding it by the trials already run keeps a resumed
    # study reproducible without replaying the first session's random start-up proposals.
    study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.trials))
    return study, url


def tune(
    frame: pd.DataFrame,
    folds: Sequence[Fold],
    *,
    feature_names: Sequence[str],
    objective: Objective,
    n_trials: int,
    time_budget_s: float,
    storage_path: Path,
    study_name: str | None = None,
    seed: int = 0,
    cost: FoldCost = expected_cost_at_best_threshold,
    space: Callable[[optuna.Trial], dict[str, Any]] = suggest_hyperparameters,
    fixed: Mapping[str, Any] = HYPERPARAMETERS,
    progress: Progress = no_progress,
    tracker: Tracker = no_tracking,
    timer: Callable[[], float] = time.monotonic,
) -> TuneResult:
    """Search hyperparameters for ``objective`` over ``folds`` (the validation folds).

    Runs up to ``n_trials`` more trials in the study ``study_name`` (default
    ``lgbm-<objective>``) stored in the SQLite file ``storage_path``, and stops early once
    ``time_budget_s`` has passed: the budget is checked before each fold, and a trial it
    cuts short is recorded as ``stopped`` (it says nothing about its hyperparameters). A
    study continued with other folds, features or objective is refused. ``cost`` measures
    one fold for ``expected_cost`` (the simple single-threshold model by default; a fuller
    threshold choice can be plugged in). ``fixed`` holds what is not searched, the monotone
    constraints among it.
    """
    if objective not in OBJECTIVES:
        raise InputError(f"unknown objective {objective!r}: expected one of {list(OBJECTIVES)}")
    if n_trials < 1:
        raise InputError(f"n_trials must be at least 1, got {n_trials}")
    if time_budget_s <= 0:
        raise InputError(f"time_budget_s must be positive, got {time_budget_s}")
    if not folds:
        raise InputError("tune needs at least one validation fold")
    started = timer()
    deadline = started + time_budget_s
    names = list(feature_names)
    prepared = _prepare(frame, folds, names, objective)
    name = study_name or f"lgbm-{objective}"
    identity = {"objective": objective, "folds": _describe_folds(folds), "features": names}
    study, url = _open_study(storage_path, name, objective, seed, identity)
    tracker.study_started(
        name,
        {
            "objective": objective,
            "n_trials": n_trials,
            "time_budget_s": time_budget_s,
            "seed": seed,
            "storage": url,
            "folds": "; ".join(identity["folds"]),
            "trials_before": len(study.trials),
        },
    )
    stopped_by: Literal["trials", "time_budget"] = "trials"
    new_trials = 0
    progress("tuning trials", 0, n_trials)
    for done in range(1, n_trials + 1):
        if timer() >= deadline:
            stopped_by = "time_budget"
            break
        record = _run_trial(study, prepared, objective, names, cost, space, fixed, deadline, timer)
        new_trials += 1
        tracker.trial_finished(record)
        progress("tuning trials", done, n_trials)
        if record.state == "stopped":
            stopped_by = "time_budget"
            break
    trials = [_record(t) for t in study.get_trials(deepcopy=False)]
    completed = [t for t in trials if t.state == "complete" and t.value is not None]
    best: TrialRecord | None = None
    if completed:
        pick = max if OBJECTIVES[objective] == "maximize" else min
        best = pick(completed, key=lambda t: t.value if t.value is not None else 0.0)
    result = TuneResult(
        study_name=name,
        storage=url,
        objective=objective,
        direction=OBJECTIVES[objective],
        best_params={} if best is None else dict(best.params),
        best_value=None if best is None else best.value,
        trials=trials,
        new_trials=new_trials,
        stopped_by=stopped_by,
        seconds=timer() - started,
    )
    tracker.study_finished(
        {
            "best_value": result.best_value,
            "best_params": result.best_params,
            "completed": result.count("complete"),
            "pruned": result.count("pruned"),
            "new_trials": new_trials,
            "seconds": result.seconds,
        }
    )
    return result


def _run_trial(
    study: optuna.Study,
    prepared: Sequence[_FoldData],
    objective: Objective,
    names: list[str],
    cost: FoldCost,
    space: Callable[[optuna.Trial], dict[str, Any]],
    fixed: Mapping[str, Any],
    deadline: float,
    timer: Callable[[], float],
) -> TrialRecord:
    trial = study.ask()
    began = timer()
    fold_values: list[float] = []
    fold_metrics: list[dict[str, float]] = []
    state = optuna.trial.TrialState.COMPLETE
    try:
        hyperparameters = hyperparameters_from(space(trial), fixed)
        for step, data in enumerate(prepared):
            if timer() >= deadline:
                trial.set_user_attr("stopped", "time_budget")
                state = optuna.trial.TrialState.FAIL
                break
            booster = fit_booster(data.train_x, data.train_y, hyperparameters)
            scores = np.asarray(booster.predict(data.test_x), dtype=np.float64)
            metrics: dict[str, float] = {
                key: float(value) for key, value in assess(data.test, scores).as_dict().items()
            }
            if "amount" in data.test.columns:
                metrics["expected_cost"] = cost(data.test, scores)
            fold_values.append(metrics[objective])
            fold_metrics.append(metrics)
            trial.report(float(np.mean(fold_values)), step)
            if trial.should_prune():
                state = optuna.trial.TrialState.PRUNED
                break
    except BaseException:
        # Leave no trial RUNNING in the storage: a resumed study would count it forever.
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        raise
    trial.set_user_attr("fold_values", fold_values)
    trial.set_user_attr("fold_metrics", fold_metrics)
    trial.set_user_attr("seconds", timer() - began)
    if state == optuna.trial.TrialState.COMPLETE:
        frozen = study.tell(trial, float(np.mean(fold_values)))
    else:
        frozen = study.tell(trial, state=state)
    return _record(frozen)


def fold_dates(folds: Sequence[Fold]) -> tuple[date, date]:
    """The first and last day a set of folds reads (their feature table's span)."""
    return min(f.train_start for f in folds), max(f.test_end for f in folds)
