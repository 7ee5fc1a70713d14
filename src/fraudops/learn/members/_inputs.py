"""Checks every member and learner applies to what it is given and what it answers.

A learner is handed a feature table, 0/1 labels and optional weights; a member is handed a
float matrix in its feature order. Both refuse what they cannot use with an error that
names the member and the problem, rather than fitting or answering something wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from fraudops.errors import InputError, InvalidScoreError, NotEnoughDataError

PositiveWeight = float | Literal["balanced"]
"""A fraud's weight relative to a genuine transaction's, or ``"balanced"`` (genuine/fraud)."""

FloatMatrix = npt.NDArray[np.float64]
FloatVector = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class TrainingData:
    """A learner's checked input: features as float64, labels as 0/1, weights or None."""

    features: FloatMatrix
    labels: npt.NDArray[np.int8]
    sample_weight: FloatVector | None
    feature_names: tuple[str, ...]


def _finite_or_nan(values: FloatMatrix, names: Sequence[str], where: str) -> None:
    infinite = np.isinf(values)
    if infinite.any():
        columns = sorted({names[int(i)] for i in np.flatnonzero(infinite.any(axis=0))})
        raise InputError(f"{where}: infinite values in feature(s) {', '.join(columns)}")


def training_data(
    features: pd.DataFrame,
    labels: npt.ArrayLike,
    sample_weight: npt.ArrayLike | None,
    learner: str,
) -> TrainingData:
    """Check and convert one learner's training input; NaN features are allowed."""
    where = f"learner {learner}"
    names = tuple(str(name) for name in features.columns)
    if not names:
        raise InputError(f"{where}: the feature table has no columns")
    if len(set(names)) != len(names):
        raise InputError(f"{where}: duplicate feature names in {list(names)}")
    try:
        matrix = features.to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: features must be numeric: {exc}") from exc
    _finite_or_nan(matrix, names, where)
    y = np.asarray(labels)
    if y.ndim != 1 or len(y) != len(matrix):
        raise InputError(f"{where}: {len(matrix)} feature rows but labels of shape {y.shape}")
    if not np.isin(y, (0, 1)).all():
        raise InputError(f"{where}: labels must be 0 or 1")
    y8 = y.astype(np.int8)
    frauds = int(y8.sum())
    if frauds == 0 or frauds == len(y8):
        raise NotEnoughDataError(
            f"{where}: {len(y8)} rows, {frauds} fraudulent; fitting needs both classes"
        )
    weight: FloatVector | None = None
    if sample_weight is not None:
        weight = np.asarray(sample_weight, dtype=np.float64)
        if weight.shape != y8.shape:
            raise InputError(f"{where}: {len(y8)} rows but sample_weight of shape {weight.shape}")
        if not np.isfinite(weight).all() or (weight < 0).any() or weight.sum() <= 0:
            raise InputError(f"{where}: sample_weight must be finite, non-negative, not all 0")
    return TrainingData(features=matrix, labels=y8, sample_weight=weight, feature_names=names)


def positive_weight(value: PositiveWeight, labels: npt.NDArray[np.int8], learner: str) -> float:
    """The fraud class's weight: ``value``, or genuine/fraud counts for ``"balanced"``."""
    if value == "balanced":
        frauds = int(labels.sum())
        return (len(labels) - frauds) / frauds
    weight = float(value)
    if not (np.isfinite(weight) and weight > 0):
        raise InputError(f"learner {learner}: positive_weight must be > 0 or 'balanced'")
    return weight


def refuse_sample_weight(sample_weight: object, learner: str, why: str) -> None:
    """Raise InputError if a learner that cannot weight rows is given weights."""
    if sample_weight is not None:
        raise InputError(f"learner {learner} does not take sample_weight: {why}")


def feature_matrix(
    features: npt.ArrayLike, feature_names: Sequence[str], member: str
) -> FloatMatrix:
    """``features`` as an n×f float64 matrix in the member's feature order, or InputError."""
    matrix = np.asarray(features, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] != len(feature_names):
        raise InputError(
            f"member {member} expects an n×{len(feature_names)} matrix"
            f" ({', '.join(feature_names)}), got shape {matrix.shape}"
        )
    _finite_or_nan(matrix, feature_names, f"member {member}")
    return matrix


def probabilities(values: Any, rows: int, member: str) -> FloatVector:
    """A member's answer as float64 probabilities, or InvalidScoreError if it is not one."""
    scores = np.asarray(values, dtype=np.float64).reshape(-1)
    if scores.shape != (rows,):
        raise InvalidScoreError(f"member {member} answered {scores.shape} scores for {rows} rows")
    if not np.isfinite(scores).all() or (scores < 0).any() or (scores > 1).any():
        raise InvalidScoreError(f"member {member} answered scores that are not probabilities")
    return scores
