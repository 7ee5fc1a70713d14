"""Calibration: turning a model's scores into fraud probabilities that mean what they say.

A score of 0.3 from a boosted model is a rank, not a probability: the model was fitted to
its training window, so on new data its scores are over- or under-confident. Thresholds
chosen from costs (``learn.thresholds``) and the policy's ``review`` / ``decline`` numbers
only keep their meaning if a 0.3 is right 30 % of the time, so a calibrator maps scores to
probabilities. It is fitted on scores the model gave to data it was *not* fitted on (the
validation folds' assessment windows), never on its own training rows, where every model
looks sure of itself.

Two methods, both monotone non-decreasing, so calibration never reorders transactions:

- ``platt``: a logistic curve on the score's log-odds, ``p = σ(a·logit(s) + b)`` with
  ``a ≥ 0`` and Platt's smoothed targets. Two parameters: steady on little data, but it can
  only bend a score along a sigmoid.
- ``isotonic``: the best non-decreasing step function (pool adjacent violators), linearly
  interpolated between its steps, so equal scores map to equal probabilities and order is
  kept. It fits any monotone distortion, but needs data: on a few hundred rows it overfits,
  and its flat steps tie transactions a ranking would have told apart.

``fit_calibrator`` with ``method="auto"`` chooses between them out of fold: each method is
fitted on all folds but one and scored on the one left out (log loss, Brier score as the
second opinion); the choice is the lower total log loss, then refitted on every fold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, overload

import numpy as np
import numpy.typing as npt
from scipy.special import expit, logit
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from fraudops.errors import InputError, InvalidScoreError, ModelError, NotEnoughDataError

FloatArray = npt.NDArray[np.float64]

Method = Literal["isotonic", "platt"]
METHODS: tuple[Method, ...] = ("isotonic", "platt")

CALIBRATOR_FORMAT = 1
"""The version of ``Calibrator.to_dict``'s layout; ``from_dict`` refuses any other."""

LOGIT_EPS = 1e-9
"""Platt reads scores clipped to ``[eps, 1 − eps]``: a score of exactly 0 or 1 has no log-odds."""

LOG_LOSS_EPS = 1e-15
"""Log loss reads probabilities clipped to ``[eps, 1 − eps]``, so a fraud given exactly 0
costs about 34.5 nats instead of infinity: a large, finite penalty for certainty that was wrong."""


def _scores(values: npt.ArrayLike, what: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise InputError(f"{what} must be one-dimensional, got shape {array.shape}")
    bad = ~(np.isfinite(array) & (array >= 0.0) & (array <= 1.0))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{what} must lie in [0, 1]; {int(bad.sum())} do not, the first at row {first}:"
            f" {array[first]!r}"
        )
    return array


def _labels(values: npt.ArrayLike, rows: int, what: str = "labels") -> npt.NDArray[np.int8]:
    array = np.asarray(values)
    if array.ndim != 1 or len(array) != rows:
        raise InputError(f"{what} hold {array.shape} values for {rows} scores")
    if rows and not np.isin(array, (0, 1)).all():
        raise InputError(f"{what} must be 0 (genuine) or 1 (fraud)")
    return array.astype(np.int8)


def brier_score(labels: npt.ArrayLike, probabilities: npt.ArrayLike) -> float:
    """The mean squared gap between probability and outcome; lower is better, 0 is perfect."""
    probs = _scores(probabilities, "probabilities")
    y = _labels(labels, len(probs))
    if not len(probs):
        raise InputError("the Brier score needs at least one row")
    return float(np.mean((probs - y) ** 2))


def log_loss(labels: npt.ArrayLike, probabilities: npt.ArrayLike) -> float:
    """The mean negative log-likelihood of the outcomes; lower is better (``LOG_LOSS_EPS``)."""
    probs = _scores(probabilities, "probabilities")
    y = _labels(labels, len(probs))
    if not len(probs):
        raise InputError("the log loss needs at least one row")
    clipped = np.clip(probs, LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS)
    return float(-np.mean(np.where(y == 1, np.log(clipped), np.log1p(-clipped))))


@dataclass(frozen=True, slots=True)
class ReliabilityBin:
    """One bin of a reliability curve: what was predicted in it and what happened."""

    lower: float
    upper: float
    mean_predicted: float
    observed_rate: float
    count: int


def reliability_curve(
    labels: npt.ArrayLike,
    probabilities: npt.ArrayLike,
    bins: int = 10,
    strategy: Literal["quantile", "uniform"] = "quantile",
) -> list[ReliabilityBin]:
    """Predicted against observed fraud rate per bin, for the report's calibration plot.

    ``quantile`` bins hold about equal numbers of rows (edges shared by tied probabilities
    merge, so fewer bins may come back); ``uniform`` bins split [0, 1] evenly. Empty bins
    are left out. A calibrated model's bins lie near the diagonal.
    """
    probs = _scores(probabilities, "probabilities")
    y = _labels(labels, len(probs))
    if bins < 1:
        raise InputError(f"bins must be at least 1, got {bins}")
    if not len(probs):
        raise InputError("a reliability curve needs at least one row")
    if strategy == "quantile":
        edges = np.unique(np.quantile(probs, np.linspace(0.0, 1.0, bins + 1)))
    elif strategy == "uniform":
        edges = np.linspace(0.0, 1.0, bins + 1)
    else:
        raise InputError(f"strategy must be 'quantile' or 'uniform', got {strategy!r}")
    # Bin i holds edges[i] <= p < edges[i + 1]; the top edge belongs to the last bin.
    index = np.clip(np.searchsorted(edges, probs, side="right") - 1, 0, max(len(edges) - 2, 0))
    counts = np.bincount(index, minlength=max(len(edges) - 1, 1))
    predicted = np.bincount(index, weights=probs, minlength=len(counts))
    observed = np.bincount(index, weights=y.astype(np.float64), minlength=len(counts))
    curve = []
    for i in np.flatnonzero(counts):
        upper = edges[i + 1] if i + 1 < len(edges) else edges[i]
        curve.append(
            ReliabilityBin(
                lower=float(edges[i]),
                upper=float(upper),
                mean_predicted=float(predicted[i] / counts[i]),
                observed_rate=float(observed[i] / counts[i]),
                count=int(counts[i]),
            )
        )
    return curve


@dataclass(frozen=True, slots=True)
class Calibrator:
    """A fitted, monotone map from model scores in [0, 1] to fraud probabilities in [0, 1].

    Build one with ``Calibrator.fit`` or ``fit_calibrator``; store it with ``to_dict`` (plain
    JSON) and load it with ``from_dict``. ``parameters`` holds the method's fitted numbers:
    ``slope`` and ``intercept`` (Platt), or the steps ``x`` and ``y`` (isotonic).
    """

    method: Method
    parameters: Mapping[str, float | tuple[float, ...]]
    rows: int = 0
    frauds: int = 0
    _x: FloatArray = field(init=False, repr=False, compare=False)
    _y: FloatArray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.method == "platt":
            slope, intercept = self.parameters.get("slope"), self.parameters.get("intercept")
            if not isinstance(slope, float) or not isinstance(intercept, float):
                raise ModelError("a Platt calibrator needs float 'slope' and 'intercept'")
            if not (math.isfinite(slope) and math.isfinite(intercept) and slope >= 0.0):
                raise ModelError(
                    f"a Platt calibrator needs a finite slope ≥ 0 and a finite intercept,"
                    f" got slope {slope!r}, intercept {intercept!r}"
                )
            x, y = np.empty(0), np.empty(0)
        elif self.method == "isotonic":
            xs, ys = self.parameters.get("x"), self.parameters.get("y")
            if not isinstance(xs, tuple) or not isinstance(ys, tuple):
                raise ModelError(
                    "an isotonic calibrator needs the steps 'x' and 'y' as tuples of floats"
                )
            x, y = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
            if not len(x) or len(x) != len(y):
                raise ModelError(
                    f"an isotonic calibrator needs as many 'y' as 'x' steps, at least one;"
                    f" got {len(x)} and {len(y)}"
                )
            if not (np.isfinite(x).all() and np.isfinite(y).all()):
                raise ModelError("an isotonic calibrator's steps must be finite numbers")
            if (np.diff(x) <= 0).any() or (np.diff(y) < 0).any():
                raise ModelError(
                    "an isotonic calibrator's 'x' must increase strictly and its 'y' never fall"
                )
            if y[0] < 0.0 or y[-1] > 1.0:
                raise ModelError("an isotonic calibrator's 'y' must lie in [0, 1]")
        else:
            raise ModelError(f"unknown calibration method {self.method!r}; known: {METHODS}")
        object.__setattr__(self, "_x", x)
        object.__setattr__(self, "_y", y)

    @classmethod
    def fit(cls, scores: npt.ArrayLike, labels: npt.ArrayLike, method: Method) -> Calibrator:
        """Fit ``method`` to held-out ``scores`` and their 0/1 ``labels``.

        The scores must come from data the model was not fitted on. Without both fraudulent
        and genuine rows there is nothing to calibrate: NotEnoughDataError.
        """
        x = _scores(scores, "scores")
        y = _labels(labels, len(x))
        frauds = int(y.sum())
        if frauds == 0 or frauds == len(y):
            raise NotEnoughDataError(
                f"calibration needs fraudulent and genuine rows; got {len(y)} rows,"
                f" {frauds} fraudulent"
            )
        if method == "platt":
            parameters = _fit_platt(x, y)
        elif method == "isotonic":
            parameters = _fit_isotonic(x, y)
        else:
            raise InputError(f"method must be one of {METHODS}, got {method!r}")
        return cls(method, parameters, rows=len(y), frauds=frauds)

    @overload
    def apply(self, scores: float) -> float: ...

    @overload
    def apply(self, scores: npt.ArrayLike) -> FloatArray: ...

    def apply(self, scores: float | npt.ArrayLike) -> float | FloatArray:
        """The probabilities of ``scores``: a float for a float, an array for anything else.

        A score that is not a number in [0, 1] is an InvalidScoreError: the model that gave
        it is broken, and a probability made from it would be a guess.
        """
        if isinstance(scores, (float, int)) and not isinstance(scores, bool):
            return self._apply_one(float(scores))
        return self._apply(self._check(np.asarray(scores, dtype=np.float64)))

    def _apply_one(self, score: float) -> float:
        """One score in plain floats: the service's hot path (≈1 µs, where the array path
        costs ≈20 µs); the same numbers as ``_apply`` (a test pins them together)."""
        if not (math.isfinite(score) and 0.0 <= score <= 1.0):
            raise InvalidScoreError(f"a score to calibrate must be in [0, 1], got {score!r}")
        if self.method == "platt":
            slope = float(self.parameters["slope"])  # type: ignore[arg-type]
            intercept = float(self.parameters["intercept"])  # type: ignore[arg-type]
            x = min(max(score, LOGIT_EPS), 1.0 - LOGIT_EPS)
            z = slope * (math.log(x) - math.log1p(-x)) + intercept
            # expit without overflow for large |z|
            probability = (
                1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
            )
        else:
            probability = float(np.interp(score, self._x, self._y))
        return min(max(probability, 0.0), 1.0)

    def _check(self, x: FloatArray) -> FloatArray:
        bad = ~(np.isfinite(x) & (x >= 0.0) & (x <= 1.0))
        if bad.any():
            raise InvalidScoreError(
                f"a score to calibrate must be in [0, 1]; {int(bad.sum())} are not, e.g."
                f" {x[bad].flat[0]!r}"
            )
        return x

    def _apply(self, x: FloatArray) -> FloatArray:
        if self.method == "platt":
            slope = float(self.parameters["slope"])  # type: ignore[arg-type]
            intercept = float(self.parameters["intercept"])  # type: ignore[arg-type]
            z = slope * logit(np.clip(x, LOGIT_EPS, 1.0 - LOGIT_EPS)) + intercept
            probs: FloatArray = expit(z)
        else:
            # np.interp holds the end steps flat outside the fitted range.
            probs = np.interp(x, self._x, self._y)
        return np.clip(probs, 0.0, 1.0)

    def to_dict(self) -> dict[str, Any]:
        """The calibrator as plain JSON-ready values; ``from_dict`` reads it back."""
        parameters = {
            name: list(value) if isinstance(value, tuple) else value
            for name, value in self.parameters.items()
        }
        return {
            "format": CALIBRATOR_FORMAT,
            "method": self.method,
            "parameters": parameters,
            "rows": self.rows,
            "frauds": self.frauds,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibrator:
        """The calibrator ``to_dict`` wrote; a ModelError says which field is wrong."""
        if not isinstance(data, Mapping):
            raise ModelError(f"a calibrator must be a mapping, got {type(data).__name__}")
        if data.get("format") != CALIBRATOR_FORMAT:
            raise ModelError(f"calibrator format {data.get('format')!r} is not {CALIBRATOR_FORMAT}")
        unknown = set(data) - {"format", "method", "parameters", "rows", "frauds"}
        if unknown:
            raise ModelError(f"a calibrator has unknown fields: {sorted(unknown)}")
        raw = data.get("parameters")
        if not isinstance(raw, Mapping):
            raise ModelError("a calibrator needs its 'parameters' as a mapping")
        parameters: dict[str, float | tuple[float, ...]] = {}
        for name, value in raw.items():
            try:
                if isinstance(value, list):
                    parameters[str(name)] = tuple(_number(v) for v in value)
                else:
                    parameters[str(name)] = _number(value)
            except (TypeError, ValueError) as exc:
                raise ModelError(f"calibrator parameter {name!r}: {exc}") from exc
        rows, frauds = data.get("rows", 0), data.get("frauds", 0)
        if not isinstance(rows, int) or not isinstance(frauds, int):
            raise ModelError("a calibrator's 'rows' and 'frauds' must be integers")
        return cls(data.get("method"), parameters, rows=rows, frauds=frauds)  # type: ignore[arg-type]


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def _fit_platt(x: FloatArray, y: npt.NDArray[np.int8]) -> dict[str, float | tuple[float, ...]]:
    # Platt's smoothed targets, (N₊ + 1)/(N₊ + 2) and 1/(N₋ + 2), keep a small or separable
    # sample from driving the curve to a step; a soft target t is a row that is fraud with
    # weight t and genuine with weight 1 − t.
    frauds = int(y.sum())
    genuine = len(y) - frauds
    high, low = (frauds + 1.0) / (frauds + 2.0), 1.0 / (genuine + 2.0)
    target = np.where(y == 1, high, low)
    z = logit(np.clip(x, LOGIT_EPS, 1.0 - LOGIT_EPS))
    features = np.concatenate([z, z]).reshape(-1, 1)
    outcome = np.concatenate([np.ones(len(z), dtype=np.int8), np.zeros(len(z), dtype=np.int8)])
    weight = np.concatenate([target, 1.0 - target])
    model = LogisticRegression(C=np.inf, solver="lbfgs", max_iter=1000)
    model.fit(features, outcome, sample_weight=weight)
    slope, intercept = float(model.coef_[0, 0]), float(model.intercept_[0])
    if slope < 0.0:
        # Scores that rank fraud *below* genuine carry no usable order; a falling curve would
        # invert the model, so the calibrator falls back to the (smoothed) base rate.
        rate = float(np.average(target))
        slope, intercept = 0.0, float(logit(rate))
    return {"slope": slope, "intercept": intercept}


def _fit_isotonic(x: FloatArray, y: npt.NDArray[np.int8]) -> dict[str, float | tuple[float, ...]]:
    model = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    model.fit(x, y.astype(np.float64))
    return {
        "x": tuple(float(v) for v in model.X_thresholds_),
        "y": tuple(float(v) for v in model.y_thresholds_),
    }


FoldScores = tuple[npt.ArrayLike, npt.ArrayLike]
"""One validation fold's held-out model scores and their 0/1 labels."""


@dataclass(frozen=True, slots=True)
class MethodScore:
    """How well a method calibrated the folds it was not fitted on (lower is better)."""

    log_loss: float
    brier: float


@dataclass(frozen=True, slots=True)
class CalibrationChoice:
    """The fitted calibrator and why: each method's out-of-fold scores, when measured."""

    calibrator: Calibrator
    out_of_fold: Mapping[Method, MethodScore]

    def to_dict(self) -> dict[str, Any]:
        """The choice as JSON-ready values, for a report or a manifest."""
        return {
            "method": self.calibrator.method,
            "out_of_fold": {
                name: {"log_loss": score.log_loss, "brier": score.brier}
                for name, score in self.out_of_fold.items()
            },
            "calibrator": self.calibrator.to_dict(),
        }


def cross_fitted(folds: Sequence[FoldScores], method: Method) -> FloatArray:
    """Each fold's probabilities from ``method`` fitted on every *other* fold, concatenated.

    These are honest probabilities for the whole validation set: no row is calibrated by a
    map that saw its own label. Needs at least two folds.
    """
    checked = _check_folds(folds)
    if len(checked) < 2:
        raise InputError(f"cross-fitting needs at least two folds, got {len(checked)}")
    out = []
    for k, (scores, _) in enumerate(checked):
        rest_scores = np.concatenate([s for j, (s, _) in enumerate(checked) if j != k])
        rest_labels = np.concatenate([y for j, (_, y) in enumerate(checked) if j != k])
        out.append(Calibrator.fit(rest_scores, rest_labels, method).apply(scores))
    return np.concatenate(out)


def fit_calibrator(
    folds: Sequence[FoldScores], method: Method | Literal["auto"] = "auto"
) -> CalibrationChoice:
    """A calibrator fitted on every fold's held-out scores, the method chosen out of fold.

    ``folds`` holds one ``(scores, labels)`` pair per validation fold: the model's scores on
    that fold's assessment window, which it was not fitted on. With ``method="auto"`` each
    method is cross-fitted (fitted on all folds but one, scored on the one left out) and the
    lower out-of-fold log loss wins; at least two folds are needed. With a named method
    the out-of-fold scores are still measured when there are two folds or more.
    """
    checked = _check_folds(folds)
    if method == "auto":
        if len(checked) < 2:
            raise InputError("method='auto' chooses out of fold, so it needs at least two folds")
        candidates: tuple[Method, ...] = METHODS
    elif method in METHODS:
        candidates = (method,)
    else:
        raise InputError(f"method must be one of {(*METHODS, 'auto')}, got {method!r}")
    labels = np.concatenate([y for _, y in checked])
    scored: dict[Method, MethodScore] = {}
    if len(checked) >= 2:
        for candidate in candidates:
            probs = cross_fitted(checked, candidate)
            scored[candidate] = MethodScore(log_loss(labels, probs), brier_score(labels, probs))
    chosen = (
        min(candidates, key=lambda name: (scored[name].log_loss, scored[name].brier))
        if method == "auto"
        else candidates[0]
    )
    scores = np.concatenate([s for s, _ in checked])
    return CalibrationChoice(Calibrator.fit(scores, labels, chosen), scored)


def _check_folds(folds: Sequence[FoldScores]) -> list[tuple[FloatArray, npt.NDArray[np.int8]]]:
    if not folds:
        raise InputError("calibration needs at least one fold of held-out scores")
    checked = []
    for k, (scores, labels) in enumerate(folds):
        x = _scores(scores, f"fold {k} scores")
        checked.append((x, _labels(labels, len(x), f"fold {k} labels")))
    return checked
