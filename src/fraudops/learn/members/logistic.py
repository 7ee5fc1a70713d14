"""The logistic-regression member: median imputation, standardisation, then a linear model.

The handbook's simplest strong baseline. It sees no "missing" flag: a NaN becomes the
training median (the trees are the members that read missingness). Saved as plain JSON
(imputer medians, scaler means and scales, coefficients), never pickled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, ConfigDict
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from fraudops.errors import InputError, ModelError
from fraudops.learn.members._files import parse_json, read_member, write_member
from fraudops.learn.members._inputs import (
    FloatVector,
    PositiveWeight,
    feature_matrix,
    positive_weight,
    probabilities,
    training_data,
)

KIND = "logistic"
MODEL_FILE = "model.json"


class _Fitted(BaseModel):
    """The fitted state of the pipeline, as ``model.json`` holds it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    medians: list[float]
    means: list[float]
    scales: list[float]
    coefficients: list[float]
    intercept: float


def _pipeline(
    c: float = 1.0, class_weight: dict[int, float] | None = None, max_iter: int = 1000
) -> Pipeline:
    return Pipeline(
        [
            # keep_empty_features: a column that is all NaN in training still takes a place
            # (imputed 0), so the model's width never depends on the training window.
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", StandardScaler()),
            ("model", LogisticRegression(C=c, class_weight=class_weight, max_iter=max_iter)),
        ]
    )


def _rebuild(fitted: _Fitted) -> Pipeline:
    """The scikit-learn pipeline for a saved state.

    Each step is first fitted on a tiny stand-in so its private bookkeeping (dtypes,
    counts) is scikit-learn's own; then its learned arrays are replaced by the saved ones.
    """
    width = len(fitted.medians)
    if not width == len(fitted.means) == len(fitted.scales) == len(fitted.coefficients):
        raise ModelError(
            "logistic member: medians, means, scales and coefficients differ in length"
        )
    pipeline = _pipeline()
    stand_in = np.vstack([np.zeros(width), np.ones(width)])
    pipeline.fit(stand_in, np.array([0, 1], dtype=np.int8))
    imputer, scaler, model = (step for _, step in pipeline.steps)
    imputer.statistics_ = np.asarray(fitted.medians, dtype=np.float64)
    scaler.mean_ = np.asarray(fitted.means, dtype=np.float64)
    scaler.scale_ = np.asarray(fitted.scales, dtype=np.float64)
    scaler.var_ = scaler.scale_**2
    model.coef_ = np.asarray([fitted.coefficients], dtype=np.float64)
    model.intercept_ = np.asarray([fitted.intercept], dtype=np.float64)
    return pipeline


class LogisticMember:
    """A fitted pipeline; ``estimator`` is the native scikit-learn Pipeline (for ONNX export)."""

    kind = KIND

    def __init__(
        self,
        name: str,
        feature_names: tuple[str, ...],
        estimator: Pipeline,
        params: dict[str, Any],
    ) -> None:
        self.name = name
        self.feature_names = feature_names
        self.estimator = estimator
        self.params = params

    def predict(self, features: npt.ArrayLike) -> FloatVector:
        """Probability of fraud for each row of ``features`` (n×f, feature order, NaN allowed)."""
        matrix = feature_matrix(features, self.feature_names, self.name)
        return probabilities(self.estimator.predict_proba(matrix)[:, 1], len(matrix), self.name)

    def _fitted(self) -> _Fitted:
        imputer, scaler, model = (step for _, step in self.estimator.steps)
        return _Fitted(
            medians=[float(v) for v in imputer.statistics_],
            means=[float(v) for v in scaler.mean_],
            scales=[float(v) for v in scaler.scale_],
            coefficients=[float(v) for v in model.coef_[0]],
            intercept=float(model.intercept_[0]),
        )

    def save(self, directory: Path) -> None:
        """Write the fitted state as ``model.json`` and ``member.json``."""
        write_member(
            directory,
            kind=KIND,
            name=self.name,
            feature_names=self.feature_names,
            params=self.params,
            files={MODEL_FILE: json.dumps(self._fitted().model_dump(), indent=1).encode()},
        )

    @classmethod
    def load(cls, directory: Path) -> LogisticMember:
        """Read a member written by ``save``."""
        stored = read_member(directory, KIND)
        fitted: _Fitted = parse_json(stored, MODEL_FILE, _Fitted)
        names = tuple(stored.manifest.feature_names)
        if len(fitted.coefficients) != len(names):
            raise ModelError(
                f"{directory}: {len(names)} features but {len(fitted.coefficients)} coefficients"
            )
        return cls(stored.manifest.name, names, _rebuild(fitted), stored.manifest.params)


@dataclass(frozen=True, slots=True)
class LogisticLearner:
    """Fits the pipeline; ``c`` is scikit-learn's ``C`` (inverse L2 strength)."""

    name: str = KIND
    c: float = 1.0
    positive_weight: PositiveWeight = 1.0
    max_iter: int = 1000

    def fit(
        self,
        features: pd.DataFrame,
        labels: npt.ArrayLike,
        *,
        sample_weight: npt.ArrayLike | None = None,
    ) -> LogisticMember:
        """Fit on ``features`` (columns in model order) and 0/1 ``labels``; deterministic."""
        if not self.c > 0:
            raise InputError(f"learner {self.name}: c must be positive, got {self.c}")
        data = training_data(features, labels, sample_weight, self.name)
        weight = positive_weight(self.positive_weight, data.labels, self.name)
        pipeline = _pipeline(self.c, {0: 1.0, 1: weight}, self.max_iter)
        with threadpool_limits(limits=1):  # BLAS threads: one, like every other learner
            pipeline.fit(data.features, data.labels, model__sample_weight=data.sample_weight)
        params = {"c": self.c, "positive_weight": weight, "max_iter": self.max_iter}
        return LogisticMember(self.name, data.feature_names, pipeline, params)


__all__ = ["LogisticLearner", "LogisticMember"]
