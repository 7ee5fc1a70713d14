"""The LightGBM member: ``fraudops.learn.train``'s booster, unchanged, as one of the zoo.

It is the same model ``fraudops train`` ships (``fit_booster`` with its ``HYPERPARAMETERS``
and monotone constraints), so an ensemble is always compared with the current champion.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy.typing as npt
import pandas as pd

from fraudops.errors import ModelError
from fraudops.learn.members._files import native_file, read_member, write_member
from fraudops.learn.members._inputs import (
    FloatVector,
    PositiveWeight,
    feature_matrix,
    positive_weight,
    probabilities,
    refuse_sample_weight,
    training_data,
)
from fraudops.learn.train import HYPERPARAMETERS, fit_booster

KIND = "lightgbm"
MODEL_FILE = "model.txt"


class LightGBMMember:
    """A fitted LightGBM booster; ``booster`` is the native object (for ONNX export)."""

    kind = KIND

    def __init__(self, name: str, booster: lgb.Booster, params: Mapping[str, Any]) -> None:
        self.name = name
        self.booster = booster
        self.params = dict(params)
        self.feature_names: tuple[str, ...] = tuple(booster.feature_name())

    def predict(self, features: npt.ArrayLike) -> FloatVector:
        """Probability of fraud for each row of ``features`` (n×f, feature order, NaN allowed)."""
        matrix = feature_matrix(features, self.feature_names, self.name)
        return probabilities(self.booster.predict(matrix, num_threads=1), len(matrix), self.name)

    def save(self, directory: Path) -> None:
        """Write the booster in LightGBM's text format and ``member.json``."""
        write_member(
            directory,
            kind=KIND,
            name=self.name,
            feature_names=self.feature_names,
            params=self.params,
            files={MODEL_FILE: str(self.booster.model_to_string()).encode()},
        )

    @classmethod
    def load(cls, directory: Path) -> LightGBMMember:
        """Read a member written by ``save``."""
        stored = read_member(directory, KIND)
        try:
            booster = lgb.Booster(model_str=native_file(stored, MODEL_FILE).decode())
        except (UnicodeDecodeError, lgb.basic.LightGBMError) as exc:
            raise ModelError(f"{directory / MODEL_FILE}: not a LightGBM model: {exc}") from exc
        member = cls(stored.manifest.name, booster, stored.manifest.params)
        if list(member.feature_names) != stored.manifest.feature_names:
            raise ModelError(f"{directory}: the booster's features differ from member.json's")
        return member


@dataclass(frozen=True, slots=True)
class LightGBMLearner:
    """Fits ``fit_booster`` with ``hyperparameters``; ``positive_weight`` sets scale_pos_weight."""

    name: str = KIND
    hyperparameters: Mapping[str, Any] = field(default_factory=lambda: dict(HYPERPARAMETERS))
    positive_weight: PositiveWeight = 1.0

    def fit(
        self,
        features: pd.DataFrame,
        labels: npt.ArrayLike,
        *,
        sample_weight: npt.ArrayLike | None = None,
    ) -> LightGBMMember:
        """Fit on ``features`` (columns in model order) and 0/1 ``labels``; deterministic."""
        refuse_sample_weight(
            sample_weight, self.name, "fraudops.learn.train.fit_booster fits unweighted rows"
        )
        data = training_data(features, labels, None, self.name)
        hyperparameters = dict(self.hyperparameters)
        weight = positive_weight(self.positive_weight, data.labels, self.name)
        if weight != 1.0:  # left out otherwise, so the default is exactly train.py's model
            hyperparameters["scale_pos_weight"] = weight
        frame = pd.DataFrame(data.features, columns=list(data.feature_names))
        booster = fit_booster(frame, data.labels, hyperparameters)
        return LightGBMMember(self.name, booster, {"hyperparameters": hyperparameters})


__all__ = ["LightGBMLearner", "LightGBMMember"]
