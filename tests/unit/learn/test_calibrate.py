"""Calibration: monotone maps from model scores to probabilities that match what happens."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import expit

from fraudops.errors import InputError, InvalidScoreError, ModelError, NotEnoughDataError
from fraudops.learn.calibrate import (
    Calibrator,
    brier_score,
    cross_fitted,
    fit_calibrator,
    reliability_curve,
)

Sample = tuple[npt.NDArray[np.float64], npt.NDArray[np.int8]]


def overconfident(rows: int, seed: int) -> Sample:
    """Scores σ(3z + 1) for frauds drawn with probability σ(z): a sigmoid-shaped distortion."""
    rng = np.random.default_rng(seed)
    z = rng.normal(-1.5, 1.5, size=rows)
    labels = (rng.random(rows) < expit(z)).astype(np.int8)
    return expit(3.0 * z + 1.0), labels


def staircase(rows: int, seed: int) -> Sample:
    """Uniform scores whose fraud rate is 0.05, 0.4, 0.9 in three flat steps: no sigmoid."""
    rng = np.random.default_rng(seed)
    scores = rng.random(rows)
    truth = np.where(scores < 0.3, 0.05, np.where(scores < 0.7, 0.4, 0.9))
    return scores, (rng.random(rows) < truth).astype(np.int8)


def calibration_error(labels: npt.ArrayLike, probabilities: npt.ArrayLike) -> float:
    """The gap between predicted and observed rate over ten quantile bins, weighted by rows."""
    curve = reliability_curve(labels, probabilities, bins=10)
    total = sum(b.count for b in curve)
    return sum(b.count * abs(b.observed_rate - b.mean_predicted) for b in curve) / total


@pytest.mark.parametrize(("method", "sample"), [("platt", overconfident), ("isotonic", staircase)])
def test_calibration_repairs_a_miscalibrated_score(
    method: str, sample: Callable[[int, int], Sample]
) -> None:
    """On fresh data, calibrated probabilities beat the raw scores and sit on the diagonal."""
    scores, labels = sample(20_000, 1)
    calibrator = Calibrator.fit(scores, labels, method)  # type: ignore[arg-type]
    fresh_scores, fresh_labels = sample(20_000, 2)
    probs = calibrator.apply(fresh_scores)

    assert brier_score(fresh_labels, probs) < brier_score(fresh_labels, fresh_scores)
    assert calibration_error(fresh_labels, fresh_scores) > 0.05  # the distortion is real
    assert calibration_error(fresh_labels, probs) < 0.01


def test_platt_recovers_the_distortion() -> None:
    """Scores σ(3z + 1) calibrate back to σ(z): slope 1/3, intercept −1/3 on the log-odds."""
    scores, labels = overconfident(50_000, 3)
    calibrator = Calibrator.fit(scores, labels, "platt")
    assert pytest.approx(1 / 3, abs=0.02) == calibrator.parameters["slope"]
    assert pytest.approx(-1 / 3, abs=0.06) == calibrator.parameters["intercept"]


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_one_value_equals_the_same_value_in_a_batch(method: str) -> None:
    """Calibrating a score alone gives what it gets inside an array, to the last bits.

    The one-float path is plain float arithmetic (the service's hot path), the array path
    NumPy and SciPy: the two agree to rounding, not bit for bit.
    """
    scores, labels = staircase(2_000, 4)
    calibrator = Calibrator.fit(scores, labels, method)  # type: ignore[arg-type]
    values = [0.0, 1e-12, 0.1, 0.3, 0.29999, 0.5, 0.7, 0.99, 1.0]
    batch = calibrator.apply(np.asarray(values))
    assert list(batch) == pytest.approx([calibrator.apply(v) for v in values], rel=1e-12, abs=0)
    assert all(isinstance(calibrator.apply(v), float) for v in values)


_platt = Calibrator.fit(*overconfident(2_000, 5), "platt")
_isotonic = Calibrator.fit(*staircase(2_000, 5), "isotonic")


@given(st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=50))
def test_calibration_keeps_order_and_stays_in_range(scores: list[float]) -> None:
    """Sorted scores calibrate to non-decreasing probabilities in [0, 1], ties to ties."""
    ordered = np.sort(np.asarray(scores))
    for calibrator in (_platt, _isotonic):
        probs = calibrator.apply(ordered)
        assert bool((np.diff(probs) >= 0).all())
        assert bool(((probs >= 0) & (probs <= 1)).all())
        assert calibrator.apply(ordered[0]) == calibrator.apply(float(ordered[0]))


@pytest.mark.parametrize("calibrator", [_platt, _isotonic], ids=["platt", "isotonic"])
def test_round_trip_through_json(calibrator: Calibrator) -> None:
    """A calibrator written with to_dict and read back through JSON maps scores the same."""
    restored = Calibrator.from_dict(json.loads(json.dumps(calibrator.to_dict())))
    grid = np.linspace(0.0, 1.0, 101)
    assert calibrator == restored
    assert list(calibrator.apply(grid)) == list(restored.apply(grid))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": 2}, "format"),
        ({"method": "beta"}, "unknown calibration method"),
        ({"parameters": {"x": [0.1, 0.5], "y": [0.6, 0.2]}}, "never fall"),
        ({"parameters": {"x": [0.1, 0.5], "y": [0.2]}}, "as many"),
        ({"parameters": {"x": [0.1, "a"], "y": [0.2, 0.3]}}, "'x'"),
        ({"pickle": "…"}, "unknown fields"),
    ],
)
def test_a_bad_stored_calibrator_is_a_model_error(change: dict[str, object], message: str) -> None:
    """A damaged calibrator is refused on loading, with the field that is wrong."""
    data = {**_isotonic.to_dict(), **change}
    with pytest.raises(ModelError, match=message):
        Calibrator.from_dict(data)


def test_a_falling_platt_slope_is_refused() -> None:
    """A stored Platt curve that would invert the model's order does not load."""
    with pytest.raises(ModelError, match="slope"):
        Calibrator("platt", {"slope": -1.0, "intercept": 0.0})


def test_scores_that_rank_fraud_last_calibrate_to_the_base_rate() -> None:
    """Platt never fits a falling curve: inverted scores get one probability, the base rate."""
    scores = np.linspace(0.0, 1.0, 100)
    labels = (scores < 0.2).astype(np.int8)
    calibrator = Calibrator.fit(scores, labels, "platt")
    probs = calibrator.apply(scores)
    assert 0.0 == calibrator.parameters["slope"]
    assert pytest.approx((20 + 1) / (20 + 2) * 0.2 + 1 / 82 * 0.8) == float(probs[0])
    assert 1 == len(np.unique(probs))


@pytest.mark.parametrize("seed", range(5))
def test_auto_prefers_platt_on_tiny_sigmoid_shaped_folds(seed: int) -> None:
    """With 40 rows a fold, isotonic steps overfit and out-of-fold log loss picks Platt."""
    folds = [overconfident(40, 10 * seed + k) for k in range(4)]
    choice = fit_calibrator(folds, "auto")
    assert "platt" == choice.calibrator.method
    assert choice.out_of_fold["platt"].log_loss < choice.out_of_fold["isotonic"].log_loss


@pytest.mark.parametrize("seed", range(5))
def test_auto_prefers_isotonic_on_a_staircase(seed: int) -> None:
    """With plenty of rows and a shape no sigmoid can follow, out-of-fold loss picks isotonic."""
    folds = [staircase(2_000, 10 * seed + k) for k in range(4)]
    choice = fit_calibrator(folds, "auto")
    assert "isotonic" == choice.calibrator.method
    assert choice.out_of_fold["isotonic"].brier < choice.out_of_fold["platt"].brier


def test_the_chosen_calibrator_is_fitted_on_every_fold() -> None:
    """After choosing, the calibrator is refitted on all folds' rows together."""
    folds = [staircase(500, k) for k in range(3)]
    choice = fit_calibrator(folds, "isotonic")
    assert 1_500 == choice.calibrator.rows
    assert {"isotonic"} == set(choice.out_of_fold)


def test_cross_fitted_probabilities_never_see_their_own_fold() -> None:
    """Each fold is calibrated by a map fitted on the other folds only."""
    folds = [staircase(300, k) for k in range(3)]
    probs = cross_fitted(folds, "isotonic")
    others = Calibrator.fit(
        np.concatenate([folds[0][0], folds[2][0]]),
        np.concatenate([folds[0][1], folds[2][1]]),
        "isotonic",
    )
    assert list(others.apply(folds[1][0])) == list(probs[300:600])


def test_auto_needs_two_folds() -> None:
    """One fold leaves nothing to choose out of fold with."""
    with pytest.raises(InputError, match="at least two folds"):
        fit_calibrator([staircase(100, 0)], "auto")


def test_one_class_is_not_enough_to_calibrate() -> None:
    """Scores without a single fraud cannot be calibrated."""
    with pytest.raises(NotEnoughDataError, match="0 fraudulent"):
        Calibrator.fit([0.1, 0.2, 0.3], [0, 0, 0], "isotonic")


@pytest.mark.parametrize(
    ("scores", "labels", "message"),
    [
        ([0.1, 1.2], [0, 1], r"lie in \[0, 1\]"),
        ([0.1, float("nan")], [0, 1], r"lie in \[0, 1\]"),
        ([0.1, 0.2], [0, 1, 1], "values for 2 scores"),
        ([0.1, 0.2], [0, 2], "0 \\(genuine\\) or 1"),
    ],
)
def test_bad_training_input_is_an_input_error(
    scores: list[float], labels: list[int], message: str
) -> None:
    """Scores out of range, labels of the wrong length or kind are refused before fitting."""
    with pytest.raises(InputError, match=message):
        Calibrator.fit(scores, labels, "platt")


@pytest.mark.parametrize("score", [float("nan"), -0.01, 1.5])
def test_an_invalid_score_to_apply_is_an_invalid_score_error(score: float) -> None:
    """A broken model's score never becomes a probability."""
    with pytest.raises(InvalidScoreError):
        _isotonic.apply(score)


def test_brier_score_by_hand() -> None:
    """The Brier score is the mean squared gap: ((0.2 − 0)² + (0.6 − 1)²) / 2 = 0.1."""
    assert pytest.approx(0.1) == brier_score([0, 1], [0.2, 0.6])


def test_reliability_curve_by_hand() -> None:
    """Uniform bins hold what fell in them: predicted mean, fraud rate and count."""
    curve = reliability_curve([0, 1, 0, 1], [0.1, 0.1, 0.3, 0.9], bins=2, strategy="uniform")
    expected = [0.0, 0.5, 0.5 / 3, 1 / 3, 3, 0.5, 1.0, 0.9, 1.0, 1]
    actual = [
        value
        for b in curve
        for value in (b.lower, b.upper, b.mean_predicted, b.observed_rate, b.count)
    ]
    assert pytest.approx(expected) == actual


def test_quantile_bins_merge_tied_edges() -> None:
    """Probabilities tied across quantile edges share one bin, and every row is counted."""
    # The quintile edges of eight zeros, 0.5 and 0.9 are 0, 0, 0, 0, 0.1 and 0.9.
    curve = reliability_curve([0] * 8 + [1, 1], [0.0] * 8 + [0.5, 0.9], bins=5)
    assert [(8, 0.0), (2, 1.0)] == [(b.count, b.observed_rate) for b in curve]
