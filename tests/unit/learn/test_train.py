"""Fitting and cross-validating the classifier on plain feature tables."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fraudops.errors import InputError, NotEnoughDataError
from fraudops.learn.protocol import prequential_folds
from fraudops.learn.report import Report
from fraudops.learn.train import (
    constant_features,
    cross_validate,
    fit_booster,
    hyperparameters_from,
)
from tests.unit.learn.conftest import FEATURES

FOLDS = prequential_folds(date(2018, 1, 22), train_days=7, delay_days=7, test_days=7, n_folds=2)
FAST = {"objective": "binary", "num_boost_round": 20, "num_leaves": 7, "learning_rate": 0.2}


def test_cross_validation_beats_a_random_scorer(feature_table: pd.DataFrame) -> None:
    """Each fold's AUC is well above 0.5 and its AP well above the fraud rate."""
    result = cross_validate(feature_table, FOLDS, FEATURES, FAST)
    fraud_rate = feature_table["is_fraud"].mean()
    assert all(
        r.metrics.roc_auc > 0.8 and r.metrics.average_precision > 3 * fraud_rate
        for r in result.results
    )


def test_fold_results_record_windows_and_counts(feature_table: pd.DataFrame) -> None:
    """Each fold reports its dates and how many (fraudulent) transactions it used."""
    result = cross_validate(feature_table, FOLDS, FEATURES, FAST)
    first = result.results[0].as_dict()
    in_train = feature_table[
        (feature_table["ts"] >= FOLDS[0].train_window[0])
        & (feature_table["ts"] < FOLDS[0].train_window[1])
    ]
    assert ("2018-01-22", "2018-02-05", len(in_train), int(in_train["is_fraud"].sum())) == (
        first["train_start"],
        first["test_start"],
        first["train_transactions"],
        first["train_frauds"],
    )


def test_latest_model_is_fold_zeros(feature_table: pd.DataFrame) -> None:
    """The model kept is the one fitted on the latest training window."""
    result = cross_validate(feature_table, FOLDS, FEATURES, FAST)
    train = feature_table[
        (feature_table["ts"] >= FOLDS[0].train_window[0])
        & (feature_table["ts"] < FOLDS[0].train_window[1])
    ]
    refit = fit_booster(train[list(FEATURES)], train["is_fraud"].to_numpy(), FAST)
    assert refit.model_to_string() == result.latest_model.model_to_string()


def test_fitting_is_deterministic(feature_table: pd.DataFrame) -> None:
    """The same data and hyperparameters give the same trees, byte for byte."""
    rows = feature_table.iloc[:5000]
    params = {**FAST, "feature_fraction": 0.7, "bagging_fraction": 0.7, "bagging_freq": 1}
    first = fit_booster(rows[list(FEATURES)], rows["is_fraud"].to_numpy(), params)
    second = fit_booster(rows[list(FEATURES)], rows["is_fraud"].to_numpy(), params)
    assert first.model_to_string() == second.model_to_string()


def test_training_window_without_fraud_names_the_window(feature_table: pd.DataFrame) -> None:
    """A training week with no fraud is a NotEnoughDataError naming its dates."""
    genuine_only = feature_table.assign(is_fraud=0)
    with pytest.raises(NotEnoughDataError, match=r"training window 2018-01-22…2018-01-28"):
        cross_validate(genuine_only, FOLDS[:1], FEATURES, FAST)


def test_empty_test_window_names_the_window(feature_table: pd.DataFrame) -> None:
    """A test week past the end of the data is a NotEnoughDataError naming its dates."""
    late = prequential_folds(date(2018, 2, 1), n_folds=1)
    with pytest.raises(NotEnoughDataError, match=r"test window 2018-02-15…2018-02-21"):
        cross_validate(feature_table, late, FEATURES, FAST)


def test_report_gives_fold_means_and_population_std(feature_table: pd.DataFrame) -> None:
    """The report's top level is the fold mean; std is the population spread (ddof 0)."""
    result = cross_validate(feature_table, FOLDS, FEATURES, FAST)
    report = Report(
        folds=result.results,
        model_dir=Path("m"),
        model_version="v",
        feature_definition_hash="h",
        seconds=1.0,
    ).as_dict()
    aucs = [r.metrics.roc_auc for r in result.results]
    mean = sum(aucs) / 2
    std = abs(aucs[0] - aucs[1]) / 2
    assert (pytest.approx(mean), pytest.approx(std), 2) == (
        report["roc_auc"],
        report["std"]["roc_auc"],
        len(report["folds"]),
    )


def test_monotone_feature_never_lowers_the_score(feature_table: pd.DataFrame) -> None:
    """A feature named in monotone_increasing can only raise the score as it grows."""
    rows = feature_table.iloc[:8000]
    params = {**FAST, "monotone_increasing": ["amount"]}
    booster = fit_booster(rows[list(FEATURES)], rows["is_fraud"].to_numpy(), params)
    base = rows[list(FEATURES)].iloc[:200].to_numpy()
    raised = base.copy()
    raised[:, 2] *= 10
    expected = 0
    lowered = np.asarray(booster.predict(raised)) < np.asarray(booster.predict(base))
    assert expected == int(lowered.sum())


def test_constant_feature_is_reported(feature_table: pd.DataFrame) -> None:
    """A feature that never varies in training is named in a warning; varying ones are not."""
    frame = feature_table.assign(noise=0.0)
    warnings = constant_features(frame, FEATURES)
    expected = (1, True)
    assert expected == (len(warnings), warnings[0].startswith("feature noise is constant (0.0)"))


def test_a_bagging_fraction_switches_bagging_on() -> None:
    """Below 1 the fraction gets bagging_freq 1 (LightGBM ignores it otherwise), unless given."""
    assert (1, 3, None) == (
        hyperparameters_from({"bagging_fraction": 0.8}).get("bagging_freq"),
        hyperparameters_from({"bagging_fraction": 0.8, "bagging_freq": 3}).get("bagging_freq"),
        hyperparameters_from({"bagging_fraction": 1.0}).get("bagging_freq"),
    )


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"learning_rat": 0.1}, "learning_rat: unknown hyperparameter"),
        ({"num_leaves": "many"}, "num_leaves: "),
        ({"num_boost_round": -5}, "num_boost_round: "),
        ({"bagging_fraction": 1.5}, "bagging_fraction: "),
        ({"num_leaves": True}, "num_leaves: "),
    ],
)
def test_unknown_or_bad_hyperparameters_are_refused_by_name(
    params: dict[str, object], named: str
) -> None:
    """A misspelt name or an unusable value is an InputError naming the key, not ignored."""
    with pytest.raises(InputError, match=named):
        hyperparameters_from(params)
