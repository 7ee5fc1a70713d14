"""The LightGBM scorer: single-row and batch scores agree, bad output is refused."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

from fraudops.decide.scorer import LightGBMScorer, Scorer
from fraudops.errors import ModelError
from fraudops.learn.artifact import ManifestMetrics, new_manifest, save_model_dir

NAMES = ["amount", "risk", "noise"]


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    """Rows where a high amount and a high risk mean fraud; some cells unknown (NaN)."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3000, 3))
    x[rng.random(size=3000) < 0.05, 1] = np.nan
    return x


@pytest.fixture(scope="module")
def booster(data: np.ndarray) -> lgb.Booster:
    """A small model on ``data``."""
    y = ((data[:, 0] + np.nan_to_num(data[:, 1])) > 1.5).astype(float)
    params = {"objective": "binary", "verbosity": -1, "num_threads": 1, "seed": 0}
    return lgb.train(params, lgb.Dataset(data, label=y, feature_name=NAMES), num_boost_round=30)


def _nan_model(booster: lgb.Booster) -> lgb.Booster:
    lines = []
    for line in booster.model_to_string().split("\n"):
        if line.startswith("tree_sizes="):
            continue  # the byte offsets no longer hold once leaf values are rewritten
        if line.startswith("leaf_value="):
            count = len(line.split("=", 1)[1].split())
            line = "leaf_value=" + " ".join(["nan"] * count)
        lines.append(line)
    return lgb.Booster(model_str="\n".join(lines))


@pytest.mark.parametrize("fast", [True, False])
def test_single_row_scores_match_batch(booster: lgb.Booster, data: np.ndarray, fast: bool) -> None:
    """Scoring one row at a time gives LightGBM's batch prediction, NaN cells included."""
    scorer = LightGBMScorer(booster, "v1", fast=fast)
    rows = data[:200]
    singles = np.array([scorer.score(row) for row in rows])
    np.testing.assert_allclose(booster.predict(rows), singles, rtol=0, atol=1e-12)


def test_batch_scores_are_probabilities(booster: lgb.Booster, data: np.ndarray) -> None:
    """score_batch returns one probability per row."""
    scores = LightGBMScorer(booster, "v1").score_batch(data)
    assert ((len(data),), True) == (scores.shape, bool(((scores >= 0) & (scores <= 1)).all()))


@pytest.mark.parametrize("fast", [True, False])
def test_nan_score_is_a_model_error(booster: lgb.Booster, data: np.ndarray, fast: bool) -> None:
    """A model that outputs NaN raises ModelError instead of deciding."""
    scorer = LightGBMScorer(_nan_model(booster), "broken", fast=fast)
    with pytest.raises(ModelError, match="broken"):
        scorer.score(data[0])
    with pytest.raises(ModelError, match="invalid scores"):
        scorer.score_batch(data[:5])


def test_wrong_feature_count_is_a_model_error(booster: lgb.Booster) -> None:
    """A feature vector of the wrong length is refused, naming both sizes."""
    with pytest.raises(ModelError, match=r"expects 3 features, got shape \(2,\)"):
        LightGBMScorer(booster, "v1").score(np.zeros(2))


def test_explain_names_the_features_that_raised_the_score(booster: lgb.Booster) -> None:
    """For a high-amount, high-risk row, the reasons are those features, largest first."""
    row = np.array([3.0, 3.0, 0.0])
    reasons = LightGBMScorer(booster, "v1").explain(row, top=2)
    contributions = [r.contribution for r in reasons]
    assert ({"amount", "risk"}, sorted(contributions, reverse=True)) == (
        {r.code for r in reasons},
        contributions,
    )


def test_explain_leaves_out_features_that_lowered_the_score(booster: lgb.Booster) -> None:
    """Every reason pushed the score up."""
    reasons = LightGBMScorer(booster, "v1").explain(np.array([-3.0, -3.0, 0.0]), top=3)
    assert all(r.contribution > 0 for r in reasons)


def test_scorer_loads_from_model_directory(
    tmp_path: Path, booster: lgb.Booster, data: np.ndarray
) -> None:
    """from_model_dir serves the saved model under the manifest's version."""
    manifest = new_manifest(
        booster,
        feature_definition_hash="h",
        label_delay_days=7,
        train_start=date(2018, 8, 15),
        train_end=date(2018, 8, 21),
        metrics=ManifestMetrics(mean={}, std={}, folds=[]),
        hyperparameters={},
        created_at=datetime(2018, 9, 1, tzinfo=UTC),
    )
    save_model_dir(tmp_path, booster, manifest)
    scorer: Scorer = LightGBMScorer.from_model_dir(tmp_path, definition_hash="h")
    expected: tuple[object, ...] = (
        manifest.model_version,
        tuple(NAMES),
        pytest.approx(booster.predict(data[:1])[0]),
    )
    assert expected == (
        scorer.version,
        scorer.feature_names,
        scorer.score(data[0]),
    )


def test_concurrent_single_row_scoring_is_consistent(
    booster: lgb.Booster, data: np.ndarray
) -> None:
    """Threads sharing one scorer each get their own row's score."""
    scorer = LightGBMScorer(booster, "v1")
    expected = booster.predict(data[:400])
    results: dict[int, float] = {}

    def work(offset: int) -> None:
        for i in range(offset, 400, 4):
            results[i] = scorer.score(data[i])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    np.testing.assert_allclose(expected, [results[i] for i in range(400)], atol=1e-12)


@pytest.mark.parametrize("fast", [True, False])
def test_explain_uses_lightgbm_contributions(
    booster: lgb.Booster, data: np.ndarray, fast: bool
) -> None:
    """Each reason's contribution is LightGBM's SHAP value for that feature."""
    row = data[7]
    shap = booster.predict(row[np.newaxis, :], pred_contrib=True)[0]
    reasons = LightGBMScorer(booster, "v1", fast=fast).explain(row, top=3)
    expected = {NAMES[i]: pytest.approx(shap[i]) for i in range(3) if shap[i] > 0}
    assert expected == {r.code: r.contribution for r in reasons}
