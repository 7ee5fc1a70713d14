"""The model zoo: every learner fits a member that scores, saves and loads alike."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from fraudops.errors import InputError, ModelError, ModelNotFoundError, NotEnoughDataError
from fraudops.learn import members
from fraudops.learn.members import (
    BalancedBaggingLearner,
    Learner,
    LightGBMLearner,
    LogisticLearner,
    Member,
    MLPLearner,
    XGBoostLearner,
    load_member,
)
from fraudops.learn.metrics import average_precision, roc_auc
from fraudops.learn.train import fit_booster
from tests.services import unavailable
from tests.unit.learn.conftest import FEATURES, synthetic_features

FAST_LIGHTGBM = {"objective": "binary", "num_boost_round": 30, "num_leaves": 7}

LEARNERS: dict[str, Callable[..., Learner]] = {
    "lightgbm": lambda **kw: LightGBMLearner(hyperparameters=FAST_LIGHTGBM, **kw),
    "xgboost": lambda **kw: XGBoostLearner(**kw),
    "logistic": lambda **kw: LogisticLearner(**kw),
    "balanced_bagging": lambda **kw: BalancedBaggingLearner(n_trees=15, imbalance_ratio=0.3, **kw),
    "mlp": lambda **kw: MLPLearner(hidden=(32,), learning_rate=0.01, epochs=8, **kw),
}
WEIGHTED = ("lightgbm", "xgboost", "logistic", "mlp")
"""The kinds that answer imbalance by weighting (balanced bagging resamples instead)."""


def learner(kind: str, **params: Any) -> Learner:
    """The kind's learner, small enough for tests; skips (fails in CI) without PyTorch."""
    if kind == "mlp" and importlib.util.find_spec("torch") is None:
        unavailable("PyTorch is not installed (pip install 'fraudops[torch]')")
    return LEARNERS[kind](**params)


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """3,000 training rows and 1,200 held-out rows; NaN in a tenth of two features."""
    table = synthetic_features(days=14, per_day=300, seed=1)
    table.loc[table.index[::10], "noise"] = np.nan
    table.loc[table.index[5::10], "amount"] = np.nan
    train, test = table.iloc[:3000], table.iloc[3000:]
    return (
        train[list(FEATURES)],
        train["is_fraud"].to_numpy(),
        test[list(FEATURES)].to_numpy(),
        test["is_fraud"].to_numpy(),
    )


@pytest.fixture(scope="module")
def fitted(data: tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]) -> dict[str, Member]:
    """One member of every kind available here, fitted once for the module."""
    features, labels, _, _ = data
    members = {}
    for kind in LEARNERS:
        if kind == "mlp" and importlib.util.find_spec("torch") is None:
            continue
        members[kind] = LEARNERS[kind]().fit(features, labels)
    return members


def member(fitted: dict[str, Member], kind: str) -> Member:
    """The fitted member of ``kind``; skips (fails in CI) when its library is missing."""
    if kind not in fitted:
        unavailable(f"{kind} needs PyTorch, which is not installed")
    return fitted[kind]


@pytest.mark.parametrize("kind", LEARNERS)
def test_member_beats_chance(
    kind: str,
    fitted: dict[str, Member],
    data: tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """On held-out rows each member's AUC is above 0.85 and its AP above 5× the fraud rate."""
    _, _, test, truth = data
    scores = member(fitted, kind).predict(test)
    assert (True, True) == (
        roc_auc(truth, scores) > 0.85,
        average_precision(truth, scores) > 5 * truth.mean(),
    )


@pytest.mark.parametrize("kind", LEARNERS)
def test_saved_member_loads_to_identical_predictions(
    kind: str,
    fitted: dict[str, Member],
    data: tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray],
    tmp_path: Path,
) -> None:
    """A member saved and loaded again has the same kind, name, features and scores."""
    original = member(fitted, kind)
    original.save(tmp_path / kind)
    loaded = load_member(kind, tmp_path / kind)
    test = data[2]
    assert (
        original.kind,
        original.name,
        original.feature_names,
        original.predict(test).tolist(),
    ) == (
        loaded.kind,
        loaded.name,
        loaded.feature_names,
        loaded.predict(test).tolist(),
    )


@pytest.mark.parametrize("kind", LEARNERS)
def test_predict_answers_probabilities_for_missing_values(
    kind: str, fitted: dict[str, Member]
) -> None:
    """Rows with some or all features NaN still get a probability in [0, 1]."""
    rows = np.array([[np.nan, np.nan, np.nan], [0.5, np.nan, 40.0], [np.nan, 0.1, np.nan]])
    scores = member(fitted, kind).predict(rows)
    assert (3, True) == (len(scores), bool(((scores >= 0) & (scores <= 1)).all()))


@pytest.mark.parametrize("kind", LEARNERS)
def test_one_row_scores_as_in_a_batch(
    kind: str,
    fitted: dict[str, Member],
    data: tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """Scoring rows one at a time, as the service does, gives the batch's scores."""
    scored = member(fitted, kind)
    rows = data[2][:20]
    one_by_one = [scored.predict(rows[i : i + 1])[0] for i in range(len(rows))]
    np.testing.assert_allclose(one_by_one, scored.predict(rows), rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", LEARNERS)
def test_fitting_is_deterministic(
    kind: str,
    fitted: dict[str, Member],
    data: tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """Fitting again on the same data gives exactly the same scores."""
    features, labels, test, _ = data
    refit = learner(kind).fit(features, labels)
    assert member(fitted, kind).predict(test).tolist() == refit.predict(test).tolist()


@pytest.mark.parametrize("kind", WEIGHTED)
def test_positive_weight_raises_the_scores(
    kind: str,
    fitted: dict[str, Member],
    data: tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """Weighting frauds 10× raises the mean predicted probability of held-out rows."""
    features, labels, test, _ = data
    weighted = learner(kind, positive_weight=10.0).fit(features, labels)
    assert weighted.predict(test).mean() > member(fitted, kind).predict(test).mean()


@pytest.mark.parametrize("kind", ["xgboost", "logistic", "mlp"])
def test_sample_weight_on_frauds_raises_the_scores(
    kind: str,
    fitted: dict[str, Member],
    data: tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """Weighting each fraud row 10× raises the mean predicted probability of held-out rows."""
    features, labels, test, _ = data
    weights = np.where(labels == 1, 10.0, 1.0)
    weighted = learner(kind).fit(features, labels, sample_weight=weights)
    assert weighted.predict(test).mean() > member(fitted, kind).predict(test).mean()


def test_logistic_sample_weight_on_frauds_equals_positive_weight(
    data: tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """Logistic: weighting fraud rows 4× fits what positive_weight=4 fits (to solver tolerance)."""
    features, labels, test, _ = data
    by_rows = LogisticLearner().fit(features, labels, sample_weight=np.where(labels == 1, 4.0, 1.0))
    by_class = LogisticLearner(positive_weight=4.0).fit(features, labels)
    np.testing.assert_allclose(by_class.predict(test), by_rows.predict(test), rtol=0, atol=1e-4)


def test_balanced_positive_weight_is_genuine_per_fraud(
    data: tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """positive_weight='balanced' weighs a fraud as the genuine/fraud count ratio."""
    features, labels, _, _ = data
    ratio = (labels == 0).sum() / (labels == 1).sum()
    fitted = LogisticLearner(positive_weight="balanced").fit(features, labels)
    assert ratio == pytest.approx(fitted.params["positive_weight"])


@pytest.mark.parametrize("kind", ["lightgbm", "balanced_bagging"])
def test_learners_that_cannot_weight_rows_refuse_sample_weight(
    kind: str, data: tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]
) -> None:
    """Sample weights given to a learner that would ignore them are an InputError."""
    features, labels, _, _ = data
    with pytest.raises(InputError, match="does not take sample_weight"):
        learner(kind).fit(features, labels, sample_weight=np.ones(len(labels)))


def test_lightgbm_member_is_the_training_booster(
    data: tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """The LightGBM member is fraudops.learn.train.fit_booster's model, tree for tree."""
    features, labels, _, _ = data
    expected = fit_booster(features, labels, FAST_LIGHTGBM).model_to_string()
    fitted = LightGBMLearner(hyperparameters=FAST_LIGHTGBM).fit(features, labels)
    assert expected == fitted.booster.model_to_string()


@pytest.mark.parametrize("kind", ["xgboost", "logistic"])
def test_a_single_class_is_not_enough_data(
    kind: str, data: tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]
) -> None:
    """Training rows without a fraud raise NotEnoughDataError rather than fit a constant."""
    features, labels, _, _ = data
    with pytest.raises(NotEnoughDataError, match="both classes"):
        learner(kind).fit(features, np.zeros_like(labels))


def test_predict_refuses_a_matrix_of_the_wrong_width(fitted: dict[str, Member]) -> None:
    """A matrix whose width is not the member's feature count is an InputError naming them."""
    with pytest.raises(InputError, match="signal, noise, amount"):
        fitted["xgboost"].predict(np.zeros((2, 4)))


def test_bagging_refuses_a_ratio_below_the_data_own(
    data: tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """Balanced bagging cannot undersample to fewer frauds than the data already has."""
    features, labels, _, _ = data
    with pytest.raises(InputError, match="imbalance_ratio"):
        BalancedBaggingLearner(imbalance_ratio=0.001).fit(features, labels)


def test_load_member_refuses_another_kind(fitted: dict[str, Member], tmp_path: Path) -> None:
    """Loading an XGBoost member as logistic is a ModelError naming what is there."""
    fitted["xgboost"].save(tmp_path)
    with pytest.raises(ModelError, match="holds a xgboost member, not logistic"):
        load_member("logistic", tmp_path)


def test_load_member_refuses_an_unknown_kind(tmp_path: Path) -> None:
    """An unknown kind is an InputError listing the known ones."""
    with pytest.raises(InputError, match="known: lightgbm"):
        load_member("random_forest", tmp_path)


def test_an_empty_directory_holds_no_member(tmp_path: Path) -> None:
    """A directory without member.json is ModelNotFoundError."""
    with pytest.raises(ModelNotFoundError, match=r"member\.json is missing"):
        load_member("lightgbm", tmp_path)


def test_a_changed_model_file_is_refused_before_parsing(
    fitted: dict[str, Member], tmp_path: Path
) -> None:
    """A native file whose bytes changed after saving is a ModelError, never parsed."""
    fitted["lightgbm"].save(tmp_path)
    (tmp_path / "model.txt").write_text("tree\nversion=v4\n")
    with pytest.raises(ModelError, match="does not match"):
        load_member("lightgbm", tmp_path)


def test_network_without_pytorch_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without PyTorch, constructing the network learner is a ModelError naming the extra."""
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    monkeypatch.delitem(sys.modules, "fraudops.learn.members._network", raising=False)
    monkeypatch.delattr(members, "_network", raising=False)
    with pytest.raises(ModelError, match=r"pip install 'fraudops\[torch\]'"):
        MLPLearner()
