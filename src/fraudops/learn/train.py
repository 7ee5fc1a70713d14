"""Fitting the LightGBM fraud classifier and scoring it with the prequential protocol.

Hyperparameters are fixed here, chosen once on the handbook's *validation* folds (training
starts 2018-07-11, 07-04, 06-27, 06-20) of the default simulated dataset, never on the test
weeks. See ``HYPERPARAMETERS`` for the choice and the reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from fraudops.errors import NotEnoughDataError
from fraudops.learn.metrics import assess
from fraudops.learn.protocol import Fold, remove_known_cards
from fraudops.learn.report import FoldResult
from fraudops.progress import Progress, no_progress

SEED = 0

DETERMINISM: dict[str, Any] = {
    "seed": SEED,
    "deterministic": True,
    # One thread and row-wise histograms make the trees identical run to run and machine
    # to machine; a week of data fits in about a second anyway.
    "num_threads": 1,
    "force_row_wise": True,
    "verbosity": -1,
}

HYPERPARAMETERS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_boost_round": 200,
    "num_leaves": 15,
    "max_depth": -1,
    "min_data_in_leaf": 50,
    "feature_fraction": 1.0,
    "bagging_fraction": 1.0,
    "lambda_l2": 0.0,
}
"""The model's fixed hyperparameters (placeholder until chosen on validation folds)."""


def fit_booster(
    features: pd.DataFrame,
    labels: Sequence[int] | np.ndarray[Any, Any] | pd.Series[Any],
    hyperparameters: Mapping[str, Any] = HYPERPARAMETERS,
) -> lgb.Booster:
    """Fit the binary classifier on ``features`` (columns in model order) and 0/1 ``labels``."""
    params = {**DETERMINISM, **hyperparameters}
    rounds = int(params.pop("num_boost_round"))
    dataset = lgb.Dataset(
        features.to_numpy(dtype=np.float64),
        label=np.asarray(labels, dtype=np.float64),
        feature_name=[str(name) for name in features.columns],
        free_raw_data=True,
    )
    return lgb.train(params, dataset, num_boost_round=rounds)


def _between(frame: pd.DataFrame, window: tuple[Any, Any]) -> pd.DataFrame:
    start, end = window
    ts = frame["ts"]
    inside: pd.DataFrame = frame[((ts >= start) & (ts < end)).to_numpy()]
    return inside


@dataclass(frozen=True, slots=True)
class CrossValidation:
    """Every fold's result, and the model fitted on the latest window (fold 0)."""

    results: list[FoldResult]
    latest_model: lgb.Booster


def fit_fold(
    frame: pd.DataFrame,
    fold: Fold,
    feature_names: Sequence[str],
    hyperparameters: Mapping[str, Any] = HYPERPARAMETERS,
) -> tuple[FoldResult, lgb.Booster]:
    """Train on the fold's training window and assess on its test window.

    ``frame`` is a feature table (``ts``, ``customer_id``, ``is_fraud`` and the feature
    columns) covering at least ``fold.train_start`` to ``fold.test_end``.
    """
    names = list(feature_names)
    train = _between(frame, fold.train_window)
    train_frauds = int(train["is_fraud"].sum())
    if train.empty or train_frauds == 0 or train_frauds == len(train):
        raise NotEnoughDataError(
            f"{fold.describe_train()} holds {len(train)} transactions, {train_frauds} fraudulent;"
            " training needs both fraudulent and genuine ones"
        )
    history = _between(frame, (fold.train_window[0], fold.test_window[1]))
    test = remove_known_cards(history, fold)
    test_frauds = int(test.frame["is_fraud"].sum())
    if test.frame.empty or test_frauds == 0 or test_frauds == len(test.frame):
        raise NotEnoughDataError(
            f"{fold.describe_test()} holds {len(test.frame)} transactions, {test_frauds}"
            " fraudulent after removing known cards; testing needs both"
        )
    booster = fit_booster(train[names], train["is_fraud"].to_numpy(), hyperparameters)
    scores = booster.predict(test.frame[names].to_numpy(dtype=np.float64))
    result = FoldResult(
        fold=fold,
        train_transactions=len(train),
        train_frauds=train_frauds,
        test_transactions=len(test.frame),
        test_frauds=test_frauds,
        removed_known_cards=test.removed_cards,
        metrics=assess(test.frame, scores),
    )
    return result, booster


def cross_validate(
    frame: pd.DataFrame,
    folds: Sequence[Fold],
    feature_names: Sequence[str],
    hyperparameters: Mapping[str, Any] = HYPERPARAMETERS,
    progress: Progress = no_progress,
) -> CrossValidation:
    """Fit and assess one model per fold; keep the model of the latest training window."""
    if not folds:
        raise ValueError("cross_validate needs at least one fold")
    results: list[FoldResult] = []
    latest: tuple[Fold, lgb.Booster] | None = None
    progress("fitting folds", 0, len(folds))
    for done, fold in enumerate(folds, start=1):
        result, booster = fit_fold(frame, fold, feature_names, hyperparameters)
        results.append(result)
        if latest is None or fold.train_start > latest[0].train_start:
            latest = (fold, booster)
        progress("fitting folds", done, len(folds))
    assert latest is not None
    return CrossValidation(results=results, latest_model=latest[1])
