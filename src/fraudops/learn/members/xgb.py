"""The XGBoost member: histogram gradient boosting, the handbook's most robust model.

The defaults are the handbook's validation choice (50 trees, learning rate 0.3, depth 3);
any other booster parameter goes in ``params``. One thread and a fixed seed make the trees
identical run to run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy.typing as npt
import pandas as pd
import xgboost as xgb

from fraudops.errors import InputError, ModelError
from fraudops.learn.members._files import native_file, read_member, write_member
from fraudops.learn.members._inputs import (
    FloatVector,
    PositiveWeight,
    feature_matrix,
    positive_weight,
    probabilities,
    training_data,
)

KIND = "xgboost"
MODEL_FILE = "model.json"
SEED = 0

FIXED: dict[str, Any] = {
    "objective": "binary:logistic",
    "tree_method": "hist",
    "nthread": 1,
    "seed": SEED,
    "verbosity": 0,
}
"""Parameters ``params`` may not change: the objective, and what makes a fit deterministic."""


class XGBoostMember:
    """A fitted XGBoost booster; ``booster`` is the native object (for ONNX export)."""

    kind = KIND

    def __init__(self, name: str, booster: xgb.Booster, params: Mapping[str, Any]) -> None:
        names = booster.feature_names
        if not names:
            raise ModelError(f"member {name}: the XGBoost booster has no feature names")
        booster.set_param({"nthread": 1})  # not stored in the model file
        self.name = name
        self.booster = booster
        self.params = dict(params)
        self.feature_names: tuple[str, ...] = tuple(names)

    def predict(self, features: npt.ArrayLike) -> FloatVector:
        """Probability of fraud for each row of ``features`` (n×f, feature order, NaN allowed)."""
        matrix = feature_matrix(features, self.feature_names, self.name)
        return probabilities(self.booster.inplace_predict(matrix), len(matrix), self.name)

    def save(self, directory: Path) -> None:
        """Write the booster in XGBoost's JSON format (as ``save_model``) and ``member.json``."""
        write_member(
            directory,
            kind=KIND,
            name=self.name,
            feature_names=self.feature_names,
            params=self.params,
            files={MODEL_FILE: bytes(self.booster.save_raw(raw_format="json"))},
        )

    @classmethod
    def load(cls, directory: Path) -> XGBoostMember:
        """Read a member written by ``save``."""
        stored = read_member(directory, KIND)
        booster = xgb.Booster()
        try:
            booster.load_model(bytearray(native_file(stored, MODEL_FILE)))
        except xgb.core.XGBoostError as exc:
            raise ModelError(f"{directory / MODEL_FILE}: not an XGBoost model: {exc}") from exc
        member = cls(stored.manifest.name, booster, stored.manifest.params)
        if list(member.feature_names) != stored.manifest.feature_names:
            raise ModelError(f"{directory}: the booster's features differ from member.json's")
        return member


@dataclass(frozen=True, slots=True)
class XGBoostLearner:
    """Fits an XGBoost binary classifier; ``positive_weight`` sets scale_pos_weight."""

    name: str = KIND
    n_trees: int = 50
    learning_rate: float = 0.3
    max_depth: int = 3
    positive_weight: PositiveWeight = 1.0
    params: Mapping[str, Any] = field(default_factory=dict)

    def fit(
        self,
        features: pd.DataFrame,
        labels: npt.ArrayLike,
        *,
        sample_weight: npt.ArrayLike | None = None,
    ) -> XGBoostMember:
        """Fit on ``features`` (columns in model order) and 0/1 ``labels``; deterministic."""
        fixed = sorted(set(self.params) & set(FIXED))
        if fixed:
            raise InputError(f"learner {self.name}: params may not set {', '.join(fixed)}")
        if self.n_trees < 1:
            raise InputError(f"learner {self.name}: n_trees must be at least 1")
        data = training_data(features, labels, sample_weight, self.name)
        params = {
            "eta": self.learning_rate,
            "max_depth": self.max_depth,
            "scale_pos_weight": positive_weight(self.positive_weight, data.labels, self.name),
            **self.params,
            **FIXED,
        }
        matrix = xgb.DMatrix(
            data.features,
            label=data.labels,
            weight=data.sample_weight,
            feature_names=list(data.feature_names),
            nthread=1,
        )
        booster = xgb.train(params, matrix, num_boost_round=self.n_trees)
        return XGBoostMember(self.name, booster, {**params, "n_trees": self.n_trees})


__all__ = ["XGBoostLearner", "XGBoostMember"]
