"""The model zoo: one module per kind of model, each a Learner that fits a Member.

A ``Learner`` holds its parameters (set in the constructor, nothing else happens there)
and fits deterministically, on one thread. A ``Member`` is a fitted model: it scores an
n×f float matrix in its ``feature_names`` order (NaN allowed) with probabilities, saves
itself in its library's native format, and exposes that library's object for ONNX export:

==================  ======================  ===================================  ==========
kind                learner                 native object                        files
==================  ======================  ===================================  ==========
lightgbm            LightGBMLearner         ``booster`` (lightgbm.Booster)       model.txt
xgboost             XGBoostLearner          ``booster`` (xgboost.Booster)        model.json
logistic            LogisticLearner         ``estimator`` (sklearn Pipeline)     model.json
balanced_bagging    BalancedBaggingLearner  ``estimators`` (DecisionTreeClass.)  trees.npz
mlp                 MLPLearner              ``module`` (torch.nn.Module)         model.pt,
                                                                                 network.json
==================  ======================  ===================================  ==========

Class imbalance: every learner but balanced bagging takes ``positive_weight`` (a fraud's
weight relative to a genuine transaction's, or ``"balanced"``); balanced bagging
resamples instead. ``mlp`` needs the optional PyTorch extra.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

from fraudops.errors import InputError
from fraudops.learn.members.bagging import BalancedBaggingLearner, BalancedBaggingMember
from fraudops.learn.members.lgbm import LightGBMLearner, LightGBMMember
from fraudops.learn.members.logistic import LogisticLearner, LogisticMember
from fraudops.learn.members.mlp import MLPLearner, MLPMember
from fraudops.learn.members.xgb import XGBoostLearner, XGBoostMember


class Member(Protocol):
    """A fitted model of one kind."""

    @property
    def kind(self) -> str:
        """The kind of model (a key of ``KINDS``), for ``load_member``."""
        ...

    @property
    def name(self) -> str:
        """The member's name in an ensemble (its learner's name)."""
        ...

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The columns ``predict`` expects, in order."""
        ...

    def predict(self, features: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """P(fraud) in [0, 1] for each row of an n×f float matrix (NaN allowed)."""
        ...

    def save(self, directory: Path) -> None:
        """Write the member into ``directory`` in its library's native format."""
        ...


class Learner(Protocol):
    """Fits a Member; parameters are set in the constructor."""

    @property
    def name(self) -> str:
        """The name the fitted member takes."""
        ...

    def fit(
        self,
        features: pd.DataFrame,
        labels: npt.ArrayLike,
        *,
        sample_weight: npt.ArrayLike | None = None,
    ) -> Member:
        """Fit on ``features`` (columns in model order) and 0/1 ``labels``, deterministically."""
        ...


KINDS: dict[str, Callable[[Path], Member]] = {
    "lightgbm": LightGBMMember.load,
    "xgboost": XGBoostMember.load,
    "logistic": LogisticMember.load,
    "balanced_bagging": BalancedBaggingMember.load,
    "mlp": MLPMember.load,
}
"""Each kind of member and how to load it."""


def load_member(kind: str, directory: Path) -> Member:
    """Load the ``kind`` member saved in ``directory``; ModelError if it is unusable."""
    try:
        load = KINDS[kind]
    except KeyError:
        raise InputError(f"unknown member kind {kind!r}; known: {', '.join(KINDS)}") from None
    return load(directory)


__all__ = [
    "KINDS",
    "BalancedBaggingLearner",
    "BalancedBaggingMember",
    "Learner",
    "LightGBMLearner",
    "LightGBMMember",
    "LogisticLearner",
    "LogisticMember",
    "MLPLearner",
    "MLPMember",
    "Member",
    "XGBoostLearner",
    "XGBoostMember",
    "load_member",
]
