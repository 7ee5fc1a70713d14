"""What a train or evaluate run reports: per-fold metrics and their mean and spread."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fraudops.learn.metrics import METRIC_KEYS, Metrics
from fraudops.learn.protocol import Fold


@dataclass(frozen=True, slots=True)
class FoldResult:
    """One fold: its windows, how much data each held, and the test metrics."""

    fold: Fold
    train_transactions: int
    train_frauds: int
    test_transactions: int
    test_frauds: int
    removed_known_cards: int
    metrics: Metrics

    def as_dict(self) -> dict[str, Any]:
        """The fold as its report entry (dates inclusive, ISO strings)."""
        return {
            "fold": self.fold.index,
            "train_start": self.fold.train_start.isoformat(),
            "train_end": self.fold.train_end.isoformat(),
            "test_start": self.fold.test_start.isoformat(),
            "test_end": self.fold.test_end.isoformat(),
            "train_transactions": self.train_transactions,
            "train_frauds": self.train_frauds,
            "test_transactions": self.test_transactions,
            "test_frauds": self.test_frauds,
            "removed_known_cards": self.removed_known_cards,
            **self.metrics.as_dict(),
        }


def summarise(results: list[FoldResult]) -> tuple[dict[str, float], dict[str, float]]:
    """Mean and population standard deviation of each metric over the folds."""
    table = np.array([[r.metrics.as_dict()[key] for key in METRIC_KEYS] for r in results])
    means = table.mean(axis=0)
    stds = table.std(axis=0, ddof=0)
    return (
        {key: float(v) for key, v in zip(METRIC_KEYS, means, strict=True)},
        {key: float(v) for key, v in zip(METRIC_KEYS, stds, strict=True)},
    )


@dataclass(frozen=True, slots=True)
class Report:
    """The outcome of ``fraudops train`` or ``fraudops evaluate``."""

    folds: list[FoldResult]
    model_dir: Path
    model_version: str
    feature_definition_hash: str
    seconds: float
    warnings: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)
    """What a training run says beyond the metrics: members, calibration, thresholds."""
    means: dict[str, float] = field(init=False)
    std: dict[str, float] = field(init=False)

    def __post_init__(self) -> None:
        means, std = summarise(self.folds)
        object.__setattr__(self, "means", means)
        object.__setattr__(self, "std", std)

    def as_dict(self) -> dict[str, Any]:
        """The report as the JSON contract: fold means at the top level, then the details."""
        return {
            **self.means,
            "std": dict(self.std),
            "folds": [result.as_dict() for result in self.folds],
            "model_dir": str(self.model_dir),
            "model_version": self.model_version,
            "feature_definition_hash": self.feature_definition_hash,
            "seconds": round(self.seconds, 3),
            "warnings": list(self.warnings),
            **self.details,
        }
