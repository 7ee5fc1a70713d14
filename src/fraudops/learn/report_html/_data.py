"""What the training report shows: plain values the training pipeline already holds.

The renderer recomputes nothing the pipeline measured; it only draws curves (PR, ROC,
score histograms) from each fold's test scores and counts catches at the chosen threshold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from fraudops.errors import InputError
from fraudops.learn.metrics import METRIC_KEYS
from fraudops.simulate import SCENARIO_NAMES

GENUINE = "genuine"
"""The scenario name of a genuine transaction (the simulator's scenario 0)."""

FOLD_KEYS: tuple[str, ...] = ("fold", "test_start", "test_end", *METRIC_KEYS)
"""The keys each per-fold metrics entry needs (``FoldResult.as_dict()`` has them all)."""


def scenario_names(scenarios: npt.ArrayLike) -> npt.NDArray[np.str_]:
    """Scenario names for a scenario column given as names or as the simulator's codes.

    The feature table's ``scenario`` column holds the simulator's integer codes (0 genuine,
    1 large_amount, 2 compromised_terminal, 3 compromised_card, 4 card_testing,
    5 account_takeover); names pass through unchanged.
    """
    values = np.asarray(scenarios)
    if values.dtype.kind in "iu":
        names = {0: GENUINE, **SCENARIO_NAMES}
        codes, inverse = np.unique(values, return_inverse=True)
        labels = np.array([names.get(int(c), f"scenario {int(c)}") for c in codes], dtype=str)
        return labels[inverse].reshape(values.shape)
    return values.astype(str)


@dataclass(frozen=True, eq=False)
class FoldScores:
    """One test fold's transactions as the chosen model scored them (known cards removed).

    ``scores`` are the calibrated fraud probabilities; ``scenarios`` the simulator's scenario
    column (codes or names); ``amounts`` and ``customer_ids`` are optional and, when given,
    add the amount and card views of the per-scenario catch rate.
    """

    fold: int
    labels: npt.NDArray[np.int8]
    scores: npt.NDArray[np.float64]
    scenarios: npt.NDArray[np.str_] | None = None
    amounts: npt.NDArray[np.float64] | None = None
    customer_ids: npt.NDArray[Any] | None = None

    def __post_init__(self) -> None:
        where = f"fold {self.fold} test scores"
        labels = np.asarray(self.labels)
        scores = np.asarray(self.scores, dtype=np.float64)
        if labels.ndim != 1 or scores.shape != labels.shape:
            raise InputError(
                f"{where}: labels {labels.shape} and scores {scores.shape} must be"
                " one-dimensional and of the same length"
            )
        if labels.size and not np.isin(labels, (0, 1)).all():
            raise InputError(f"{where}: labels must be 0 or 1")
        if not (np.isfinite(scores).all() and ((scores >= 0.0) & (scores <= 1.0)).all()):
            raise InputError(f"{where}: scores must be probabilities in [0, 1]")
        object.__setattr__(self, "labels", labels.astype(np.int8))
        object.__setattr__(self, "scores", scores)
        for name in ("scenarios", "amounts", "customer_ids"):
            value = getattr(self, name)
            if value is None:
                continue
            array = np.asarray(value)
            if array.shape != labels.shape:
                raise InputError(f"{where}: {name} has {array.shape} values, labels {labels.shape}")
            if name == "scenarios":
                array = scenario_names(array)
            elif name == "amounts":
                array = array.astype(np.float64)
            object.__setattr__(self, name, array)


@dataclass(frozen=True, slots=True)
class MemberScore:
    """One candidate model (a single member or an ensemble) on the validation folds."""

    name: str
    average_precision: float
    card_precision_at_100: float
    roc_auc: float
    ensemble: bool = False


@dataclass(frozen=True, slots=True)
class Calibration:
    """Reliability-curve points before and after calibration, and the Brier score of each.

    Each point is (mean predicted probability, observed fraud rate) of one bin.
    """

    raw: Sequence[tuple[float, float]]
    calibrated: Sequence[tuple[float, float]]
    brier_raw: float
    brier_calibrated: float
    method: str = ""
    measured_on: str = ""
    """Which scores the curves and the two Brier scores come from, e.g. one fold's week."""
    mean_brier_raw: float | None = None
    mean_brier_calibrated: float | None = None
    """The Brier scores' means over every fold (what the JSON report states), when known."""
    folds: int | None = None


@dataclass(frozen=True, slots=True)
class CostCurvePoint:
    """One candidate review threshold: its expected cost (per day) and its review load."""

    threshold: float
    expected_cost: float
    reviews_per_day: float


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The chosen review and decline thresholds, the cost curve behind them, and capacity.

    ``capacity_per_day`` is the review team's daily capacity, ``None`` when none was set.
    """

    review_threshold: float
    decline_threshold: float
    capacity_per_day: float | None = None
    cost_curve: Sequence[CostCurvePoint] = ()
    cost_unit: str = ""


@dataclass(frozen=True, slots=True)
class HandbookRow:
    """One row of the handbook comparison: a published figure, a baseline, or our default."""

    label: str
    roc_auc: float
    average_precision: float
    card_precision_at_100: float
    source: str = ""


@dataclass(frozen=True)
class TrainingReportData:
    """Everything the training report shows; empty optional parts leave their section out."""

    title: str
    model_version: str
    feature_definition_hash: str
    created_at: datetime
    code_version: str
    fold_metrics: Sequence[Mapping[str, Any]]
    fold_scores: Sequence[FoldScores] = ()
    members: Sequence[MemberScore] = ()
    chosen_member: str | None = None
    members_measured_on: str = "validation folds, not the test weeks above"
    calibration: Calibration | None = None
    threshold: Thresholds | None = None
    feature_importance: Mapping[str, float] = field(default_factory=dict)
    importance_kind: str = "gain"
    handbook: Sequence[HandbookRow] = ()

    def __post_init__(self) -> None:
        if not self.fold_metrics:
            raise InputError("training report: no per-fold metrics to report")
        for position, entry in enumerate(self.fold_metrics):
            missing = [key for key in FOLD_KEYS if key not in entry]
            if missing:
                raise InputError(
                    f"training report: fold metrics entry {position} lacks {', '.join(missing)}"
                )
        folds = [int(entry["fold"]) for entry in self.fold_metrics]
        if len(set(folds)) != len(folds):
            raise InputError(f"training report: fold indices repeat in the metrics: {folds}")
        names = [member.name for member in self.members]
        if self.chosen_member is not None and self.chosen_member not in names:
            raise InputError(
                f"training report: chosen member {self.chosen_member!r} is not among the"
                f" members compared ({', '.join(names) or 'none'})"
            )
        for name, value in self.feature_importance.items():
            if not math.isfinite(value):
                raise InputError(f"training report: importance of {name!r} is {value}")
