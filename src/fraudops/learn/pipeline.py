"""The default training pipeline: members, their combination, calibration and thresholds.

Each prequential fold is trained the way it would be in production on the day its test
week starts, using only labels that had arrived by then:

- the *deployed* members are fitted on the fold's training window ``W``;
- a second set, the *calibration* members, is fitted on the ``train_days`` before ``W``
  and scores ``W``: held-out predictions with labels, on which stacking and the calibrator
  are fitted and the thresholds are chosen. (With the handbook's weekly folds these are
  the next-older fold's deployed members, so each window is fitted once.)
- a rank average takes each deployed member's reference scores from the delay window
  between ``W`` and the test week: those transactions exist by then, unlabelled, and are
  the traffic the model is about to meet.

The test week's known cards are removed as the handbook does, and the served score (the
calibrated probability) is what the metrics measure. Every member is also measured alone
on the same test rows, so an ensemble that does not help is visible.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from fraudops.errors import InputError, NotEnoughDataError
from fraudops.learn.calibrate import Calibrator, Method, brier_score, cross_fitted, fit_calibrator
from fraudops.learn.ensemble import Combiner, RankAverage, Single, Stacking
from fraudops.learn.members import (
    Learner,
    LightGBMLearner,
    LogisticLearner,
    Member,
    XGBoostLearner,
)
from fraudops.learn.metrics import Metrics, assess
from fraudops.learn.protocol import Fold, TestSet, assessment_rows, day_start
from fraudops.learn.report import FoldResult
from fraudops.learn.thresholds import CostModel, ThresholdChoice, choose_thresholds
from fraudops.learn.train import hyperparameters_from
from fraudops.progress import Progress, no_progress

FloatArray = npt.NDArray[np.float64]
CombinerKind = Literal["single", "rank_average", "stacking"]

BASELINE_FEATURES: tuple[str, ...] = (
    "amount",
    "is_weekend",
    "is_night",
    "card_tx_count_1d",
    "card_avg_amount_1d",
    "card_tx_count_7d",
    "card_avg_amount_7d",
    "card_tx_count_30d",
    "card_avg_amount_30d",
    "terminal_tx_count_1d",
    "terminal_risk_1d",
    "terminal_tx_count_7d",
    "terminal_risk_7d",
    "terminal_tx_count_30d",
    "terminal_risk_30d",
)
"""The handbook's 15 baseline inputs, by their fraudops names."""


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """What the pipeline fits and how it combines, calibrates and sets thresholds."""

    learners: tuple[Learner, ...]
    combiner: CombinerKind
    calibration: Method | Literal["auto"] = "auto"
    cost_model: CostModel = field(default_factory=CostModel)
    daily_review_capacity: int | None = 100

    def __post_init__(self) -> None:
        names = [learner.name for learner in self.learners]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"a pipeline needs learners with distinct names, got {names}")
        if self.combiner == "single" and len(names) != 1:
            raise ValueError("combiner 'single' takes exactly one learner")


DEFAULT_PIPELINE = PipelineConfig(
    learners=(LightGBMLearner(),), combiner="single", calibration="platt"
)
"""What ``fraudops train`` runs with no flags: LightGBM alone, Platt-calibrated.

Chosen on the handbook's validation folds (``SELECTION``): no ensemble beat LightGBM alone
by the 0.002 AP an extra member must earn (stacking came closest, +0.0018), and Platt's
strictly increasing map keeps the model's ranking, where isotonic's flat steps tied
transactions and cost 0.007 test AP.
"""


@dataclass(frozen=True, slots=True)
class Candidate:
    """One way of scoring compared when the default pipeline was chosen (validation folds)."""

    name: str
    average_precision: float
    card_precision_at_100: float
    roc_auc: float
    ensemble: bool = False


SELECTION: tuple[Candidate, ...] = (
    Candidate("lightgbm", 0.7272, 0.3118, 0.8788),
    Candidate("stacking of all five (not worth it: +0.0018 AP)", 0.7290, 0.3125, 0.8822, True),
    Candidate("balanced bagging (IR 0.1)", 0.7090, 0.3111, 0.8839),
    Candidate("lightgbm, class-weighted", 0.7035, 0.3068, 0.8753),
    Candidate("rank average of all five", 0.7019, 0.3050, 0.8833, True),
    Candidate("mlp (PyTorch, 100-100)", 0.6812, 0.3046, 0.8790),
    Candidate("xgboost, class-weighted", 0.6669, 0.2982, 0.8703),
    Candidate("xgboost (50 trees, lr 0.3, depth 3)", 0.6485, 0.2971, 0.8656),
    Candidate("logistic regression", 0.6482, 0.3068, 0.8807),
    Candidate("logistic regression, class-weighted", 0.5910, 0.3046, 0.8839),
)
"""Mean over the four validation folds (training starts 2018-07-11 … 06-20) of the default
dataset, each member alone and combined (stacking and rank averages judged leave one fold
out): ``bench/members.py --lake DIR``. Class weighting lowered AP for every learner, as the
handbook found; balanced bagging was the best of the rest."""

HANDBOOK_BASELINES: tuple[Learner, ...] = (
    LogisticLearner(name="logistic_regression"),
    XGBoostLearner(name="xgboost", n_trees=50, learning_rate=0.3, max_depth=3),
)
"""The handbook-style baselines: its selected logistic regression and XGBoost (50 trees,
learning rate 0.3, depth 3), on its 15 baseline features."""


@dataclass(frozen=True, slots=True)
class FittedModel:
    """Deployed members, how they combine, and the calibrator: one fold's whole model."""

    members: tuple[Member, ...]
    combiner: Combiner
    calibrator: Calibrator

    @property
    def member_names(self) -> tuple[str, ...]:
        """The members' names, in column order."""
        return tuple(member.name for member in self.members)

    def member_scores(self, rows: pd.DataFrame) -> FloatArray:
        """Each member's probability for each row (n×m)."""
        return _member_scores(self.members, rows)

    def predict(self, rows: pd.DataFrame) -> FloatArray:
        """The served, calibrated fraud probability of each row."""
        return self.calibrator.apply(self.combiner.combine(self.member_scores(rows)))


@dataclass(frozen=True, slots=True)
class ThresholdOutcome:
    """Thresholds chosen on the calibration week, and what they did on the test week."""

    choice: ThresholdChoice
    test_reviews_per_day: float
    test_declines_per_day: float
    test_recall: float
    test_cost_per_day: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, without the cost curve."""
        return {
            **self.choice.to_dict(curve=False),
            "test_reviews_per_day": self.test_reviews_per_day,
            "test_declines_per_day": self.test_declines_per_day,
            "test_recall": self.test_recall,
            "test_cost_per_day": self.test_cost_per_day,
        }


@dataclass(frozen=True, slots=True)
class FoldRun:
    """One fold: the served model's result, each member alone, calibration and thresholds."""

    result: FoldResult
    model: FittedModel
    members: Mapping[str, Metrics]
    brier_raw: float
    brier_calibrated: float
    thresholds: ThresholdOutcome
    test: TestSet
    test_scores: FloatArray
    calibration_raw: FloatArray
    calibration_labels: npt.NDArray[np.int8]


@dataclass(frozen=True, slots=True)
class PipelineRun:
    """Every fold's run; fold 0 (the latest window) holds the model to ship."""

    folds: tuple[FoldRun, ...]
    config: PipelineConfig

    @property
    def latest(self) -> FoldRun:
        """The fold whose training window is the latest: its model is the one shipped."""
        return max(self.folds, key=lambda run: run.result.fold.train_start)

    def member_means(self) -> dict[str, dict[str, float]]:
        """Each member's test metrics alone, as fold means, beside the served model's."""
        table: dict[str, dict[str, float]] = {}
        names = list(self.folds[0].members)
        for name in names:
            rows = [run.members[name].as_dict() for run in self.folds]
            table[name] = {key: float(np.mean([row[key] for row in rows])) for key in rows[0]}
        return table


def _member_scores(members: Sequence[Member], rows: pd.DataFrame) -> FloatArray:
    if not members:
        return np.empty((len(rows), 0))
    matrix = rows[list(members[0].feature_names)].to_numpy(dtype=np.float64)
    return np.column_stack([member.predict(matrix) for member in members])


def _between(frame: pd.DataFrame, first: date, last: date) -> pd.DataFrame:
    ts = frame["ts"]
    inside = (ts >= day_start(first)) & (ts < day_start(last + timedelta(days=1)))
    rows: pd.DataFrame = frame[inside.to_numpy()]
    return rows


def _labelled(rows: pd.DataFrame, what: str, hint: str = "") -> pd.DataFrame:
    """``rows``, unless they lack frauds or genuine payments (``NotEnoughDataError`` naming
    the window as ``what``, and ``hint``)."""
    frauds = int(rows["is_fraud"].sum())
    if frauds == 0 or frauds == len(rows):
        raise NotEnoughDataError(
            f"{what} holds {len(rows)} transactions, {frauds} fraudulent; both are needed{hint}"
        )
    return rows


class _Fits:
    """Members fitted per training window, each window fitted once."""

    def __init__(
        self,
        frame: pd.DataFrame,
        learners: Sequence[Learner],
        feature_names: Sequence[str],
        progress: Progress,
        total: int,
    ) -> None:
        self._frame = frame
        self._learners = learners
        self._names = list(feature_names)
        self._progress = progress
        self._total = total
        self._done = 0
        self._cache: dict[tuple[date, date], tuple[Member, ...]] = {}

    def __call__(self, first: date, last: date, what: str, hint: str = "") -> tuple[Member, ...]:
        """The members fitted on ``first``…``last``; ``what`` and ``hint`` name the window
        in the error when it cannot be trained on."""
        key = (first, last)
        if key not in self._cache:
            rows = _labelled(_between(self._frame, first, last), what, hint)
            labels = rows["is_fraud"].to_numpy()
            members = []
            for learner in self._learners:
                members.append(learner.fit(rows[self._names], labels))
                self._done += 1
                self._progress("fitting members", self._done, self._total)
            self._cache[key] = tuple(members)
        return self._cache[key]


def _combiner(
    kind: CombinerKind,
    names: tuple[str, ...],
    reference: FloatArray,
    held_out: FloatArray,
    labels: npt.NDArray[np.int8],
) -> Combiner:
    if kind == "single":
        return Single(names[0])
    if kind == "rank_average":
        return RankAverage.fit(names, reference)
    return Stacking.fit(names, held_out, labels)


def _by_day(rows: pd.DataFrame, values: FloatArray) -> list[tuple[FloatArray, FloatArray]]:
    """``values`` and labels split by UTC day, in day order (rows must be in time order)."""
    days = rows["ts"].dt.floor("D").to_numpy()
    labels = rows["is_fraud"].to_numpy().astype(np.float64)
    return [(values[days == day], labels[days == day]) for day in np.unique(days)]


def _threshold_outcome(
    choice: ThresholdChoice, test: pd.DataFrame, scores: FloatArray, days: float
) -> ThresholdOutcome:
    labels = test["is_fraud"].to_numpy() == 1
    amounts = test["amount"].to_numpy(dtype=np.float64)
    declined = scores >= choice.decline_threshold
    reviewed = (scores >= choice.review_threshold) & ~declined
    caught = declined | reviewed
    costs = choice.cost_model
    cost = (
        float(amounts[labels & ~caught].sum()) * costs.missed_fraud_multiple
        + float(reviewed.sum()) * costs.review_cost
        + float((declined & ~labels).sum()) * costs.false_decline_cost
    )
    return ThresholdOutcome(
        choice=choice,
        test_reviews_per_day=float(reviewed.sum()) / days,
        test_declines_per_day=float(declined.sum()) / days,
        test_recall=float(caught[labels].mean()) if labels.any() else 0.0,
        test_cost_per_day=cost / days,
    )


def _run_fold(
    frame: pd.DataFrame,
    fold: Fold,
    config: PipelineConfig,
    fits: _Fits,
    earliest_start: date | None = None,
) -> FoldRun:
    """Fit, combine, calibrate and set thresholds for one fold, then measure its test week."""
    train_days = (fold.train_end - fold.train_start).days + 1
    hint = ""
    if earliest_start is not None:
        hint = f"; the earliest --train-start the lake can serve is {earliest_start}"
    deployed = fits(fold.train_start, fold.train_end, fold.describe_train(), hint)
    calibration_start = fold.train_start - timedelta(days=train_days)
    calibration_end = fold.train_start - timedelta(days=1)
    calibration_members = fits(
        calibration_start,
        calibration_end,
        f"the calibration week {calibration_start}…{calibration_end} (the {train_days} days"
        f" before fold {fold.index}'s training window {fold.train_start}…{fold.train_end},"
        " where the members that calibrate it and choose its thresholds are trained)",
        hint,
    )
    names = tuple(member.name for member in deployed)
    # Time order, so the calibration days below concatenate back to these rows' order.
    train = _between(frame, fold.train_start, fold.train_end).sort_values("ts", kind="stable")
    labels = train["is_fraud"].to_numpy().astype(np.int8)
    held_out = _member_scores(calibration_members, train)
    reference_rows = _between(frame, fold.train_end + timedelta(days=1), fold.test_start)
    reference_rows = reference_rows[reference_rows["ts"] < day_start(fold.test_start)]
    if reference_rows.empty:
        reference_rows = train
    # The calibration members' combination is fitted as the deployed one is, one week
    # earlier: their rank reference is the week after their training window, which is W.
    calibration_combiner = _combiner(config.combiner, names, held_out, held_out, labels)
    combiner = _combiner(
        config.combiner, names, _member_scores(deployed, reference_rows), held_out, labels
    )
    raw = calibration_combiner.combine(held_out)
    daily = _by_day(train, raw)
    method = config.calibration
    if method == "auto" and len(daily) < 2:
        method = "platt"
    choice = fit_calibrator(daily, method)
    calibrator = choice.calibrator
    honest = cross_fitted(daily, calibrator.method) if len(daily) >= 2 else calibrator.apply(raw)
    model = FittedModel(deployed, combiner, calibrator)
    test = assessment_rows(frame, fold)
    member_scores = model.member_scores(test.frame)
    scores = calibrator.apply(combiner.combine(member_scores))
    thresholds = choose_thresholds(
        honest,
        labels,
        train["amount"].to_numpy(dtype=np.float64),
        float(train_days),
        config.cost_model,
        config.daily_review_capacity,
    )
    test_days = float(len(fold.test_days))
    return FoldRun(
        result=FoldResult(
            fold=fold,
            train_transactions=len(train),
            train_frauds=int(labels.sum()),
            test_transactions=len(test.frame),
            test_frauds=int(test.frame["is_fraud"].sum()),
            removed_known_cards=test.removed_cards,
            metrics=assess(test.frame, scores),
        ),
        model=model,
        members={name: assess(test.frame, member_scores[:, j]) for j, name in enumerate(names)},
        brier_raw=brier_score(labels, np.clip(raw, 0.0, 1.0)),
        brier_calibrated=brier_score(labels, honest),
        thresholds=_threshold_outcome(thresholds, test.frame, scores, test_days),
        test=test,
        test_scores=scores,
        calibration_raw=raw,
        calibration_labels=labels,
    )


def earliest_day(folds: Sequence[Fold]) -> date:
    """The first day the pipeline reads: the calibration window of the oldest fold."""
    oldest = min(folds, key=lambda fold: fold.train_start)
    train_days = (oldest.train_end - oldest.train_start).days + 1
    return oldest.train_start - timedelta(days=train_days)


def run_pipeline(
    frame: pd.DataFrame,
    folds: Sequence[Fold],
    feature_names: Sequence[str],
    config: PipelineConfig = DEFAULT_PIPELINE,
    progress: Progress = no_progress,
    *,
    lake_first_day: date | None = None,
) -> PipelineRun:
    """Run ``config`` on every fold of ``frame`` (a feature table from ``earliest_day``).

    ``lake_first_day``, when known, lets a window the lake cannot serve name the earliest
    training start it can.
    """
    if not folds:
        raise ValueError("run_pipeline needs at least one fold")
    earliest_start = None
    if lake_first_day is not None:
        # Fold 0's start such that the oldest fold's calibration week begins on that day.
        latest_start = max(fold.train_start for fold in folds)
        servable = lake_first_day + (latest_start - earliest_day(folds))
        # Named only when the windows do start before the lake; else it is not the cause.
        earliest_start = servable if latest_start < servable else None
    windows = {(f.train_start, f.train_end) for f in folds}
    for fold in folds:
        days = (fold.train_end - fold.train_start).days + 1
        windows.add((fold.train_start - timedelta(days=days), fold.train_start - timedelta(days=1)))
    fits = _Fits(
        frame, config.learners, feature_names, progress, len(windows) * len(config.learners)
    )
    progress("fitting members", 0, len(windows) * len(config.learners))
    runs = tuple(_run_fold(frame, fold, config, fits, earliest_start) for fold in folds)
    return PipelineRun(folds=runs, config=config)


def run_baselines(
    frame: pd.DataFrame,
    folds: Sequence[Fold],
    learners: Sequence[Learner] = HANDBOOK_BASELINES,
    feature_names: Sequence[str] = BASELINE_FEATURES,
    progress: Progress = no_progress,
) -> dict[str, list[Metrics]]:
    """The handbook-style baselines retrained on the same folds, uncalibrated: per fold."""
    out: dict[str, list[Metrics]] = {learner.name: [] for learner in learners}
    total = len(folds) * len(learners)
    done = 0
    progress("baselines", 0, total)
    names = list(feature_names)
    for fold in folds:
        train = _labelled(_between(frame, fold.train_start, fold.train_end), fold.describe_train())
        test = assessment_rows(frame, fold)
        for learner in learners:
            member = learner.fit(train[names], train["is_fraud"].to_numpy())
            scores = member.predict(test.frame[names].to_numpy(dtype=np.float64))
            out[learner.name].append(assess(test.frame, scores))
            done += 1
            progress("baselines", done, total)
    return out


def with_capacity(config: PipelineConfig, capacity: int | None) -> PipelineConfig:
    """``config`` with another daily review capacity."""
    return replace(config, daily_review_capacity=capacity)


def with_hyperparameters(config: PipelineConfig, params: Mapping[str, Any]) -> PipelineConfig:
    """``config`` with ``params`` over its LightGBM members' hyperparameters.

    ``params`` is checked and completed as a tuning trial's are
    (``train.hyperparameters_from``), so a tuned result trains what its trial trained.
    """
    learners = tuple(
        replace(learner, hyperparameters=hyperparameters_from(params, learner.hyperparameters))
        if isinstance(learner, LightGBMLearner)
        else learner
        for learner in config.learners
    )
    if learners == config.learners and not any(
        isinstance(learner, LightGBMLearner) for learner in learners
    ):
        raise InputError("hyperparameters given, but the pipeline has no LightGBM member")
    return replace(config, learners=learners)


def read_hyperparameters(path: Path) -> dict[str, Any]:
    """LightGBM hyperparameters from a JSON file: a mapping, or ``fraudops tune``'s report."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read hyperparameters: {exc}") from exc
    if isinstance(document, dict) and "best_params" in document:
        document = document["best_params"]
        if document == {}:
            raise InputError(
                f"{path}: best_params is empty: no tuning trial finished (give the study more"
                " time or trials), so there are no tuned hyperparameters to train with"
            )
    if not isinstance(document, dict) or not all(isinstance(k, str) for k in document):
        raise InputError(f"{path}: hyperparameters must be a JSON object of names to values")
    if not document:
        raise InputError(f"{path}: no hyperparameters given (an empty object)")
    try:
        hyperparameters_from(document)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from exc
    return document


__all__ = [
    "BASELINE_FEATURES",
    "DEFAULT_PIPELINE",
    "HANDBOOK_BASELINES",
    "SELECTION",
    "Candidate",
    "FittedModel",
    "FoldRun",
    "PipelineConfig",
    "PipelineRun",
    "ThresholdOutcome",
    "earliest_day",
    "read_hyperparameters",
    "run_baselines",
    "run_pipeline",
    "with_capacity",
    "with_hyperparameters",
]
