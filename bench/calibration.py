"""Calibration and cost/capacity thresholds on the handbook's validation folds; prints JSON.

For each of the four validation folds (training starts 2018-07-11, 07-04, 06-27, 06-20;
assessment weeks 07-25 … 07-04) the current LightGBM is fitted on the training week and
scores the assessment week (known cards removed), so every score is held out. Then:

- calibration: each method is cross-fitted over the folds (fitted on three, applied to the
  fourth), so the Brier score, log loss and reliability curves "after" are out of fold;
  ``auto`` picks the method;
- thresholds: on those out-of-fold probabilities (28 days), the (review, decline) pair of
  least expected cost for review capacities of 5 … 200 a day and for none, with the
  default cost model and with missed fraud at three times its amount, and the time each
  search takes; and the review threshold that alone fills 50, 100, 200 reviews a day.

    .venv/bin/python bench/calibration.py [--lake /work/data/lake] [--out result.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from fraudops.learn.calibrate import (
    METHODS,
    brier_score,
    cross_fitted,
    fit_calibrator,
    log_loss,
    reliability_curve,
)
from fraudops.learn.dataset import feature_definition, load_feature_table
from fraudops.learn.metrics import average_precision, roc_auc
from fraudops.learn.protocol import assessment_rows, prequential_folds, training_rows
from fraudops.learn.thresholds import (
    CostModel,
    choose_thresholds,
    thresholds_for_capacity,
)
from fraudops.learn.train import HYPERPARAMETERS, fit_booster

VALIDATION_START = date(2018, 7, 11)
CAPACITIES: tuple[int | None, ...] = (5, 10, 20, 50, 100, 200, None)
COST_MODELS = {
    "default": CostModel(),
    # A missed fraud costing three times its amount (fees, handling, the card reissued)
    # makes reviewing deeper worth it, so the larger capacities come into play.
    "missed_fraud_x3": CostModel(missed_fraud_multiple=3.0),
}


def _calibration_error(labels: np.ndarray, probs: np.ndarray) -> float:
    """Row-weighted mean gap between predicted and observed rate over 10 quantile bins."""
    curve = reliability_curve(labels, probs, bins=10)
    return sum(b.count * abs(b.observed_rate - b.mean_predicted) for b in curve) / len(probs)


def _quality(labels: np.ndarray, probs: np.ndarray) -> dict[str, Any]:
    return {
        "brier": brier_score(labels, probs),
        "log_loss": log_loss(labels, probs),
        "calibration_error": _calibration_error(labels, probs),
        "mean_probability": float(np.mean(probs)),
        "average_precision": average_precision(labels, probs),
        "roc_auc": roc_auc(labels, probs),
        "distinct_values": len(np.unique(probs)),
        "reliability": [asdict(b) for b in reliability_curve(labels, probs, bins=10)],
    }


def run(lake: Path) -> dict[str, Any]:
    started = time.perf_counter()
    folds = prequential_folds(VALIDATION_START, n_folds=4)
    definition = feature_definition(7)
    names = list(definition.names)
    first = min(f.train_start for f in folds)
    last = max(f.test_end for f in folds)
    t = time.perf_counter()
    frame = load_feature_table(lake, first, last, definition)
    features_s = time.perf_counter() - t

    held_out: list[tuple[np.ndarray, np.ndarray]] = []
    amounts: list[np.ndarray] = []
    per_fold = []
    days = 0
    t = time.perf_counter()
    for fold in folds:
        train = training_rows(frame, fold)
        test = assessment_rows(frame, fold).frame
        booster = fit_booster(train[names], train["is_fraud"].to_numpy(), HYPERPARAMETERS)
        scores = np.asarray(booster.predict(test[names].to_numpy(dtype=np.float64)))
        labels = test["is_fraud"].to_numpy().astype(np.int8)
        held_out.append((scores, labels))
        amounts.append(test["amount"].to_numpy(dtype=np.float64))
        days += len(fold.test_days)
        per_fold.append(
            {
                "train_start": str(fold.train_start),
                "test": f"{fold.test_start}…{fold.test_end}",
                "test_transactions": len(labels),
                "test_frauds": int(labels.sum()),
                "average_precision": average_precision(labels, scores),
                "brier_raw": brier_score(labels, scores),
            }
        )
    training_s = time.perf_counter() - t

    labels = np.concatenate([y for _, y in held_out])
    raw = np.concatenate([s for s, _ in held_out])
    t = time.perf_counter()
    out_of_fold = {method: cross_fitted(held_out, method) for method in METHODS}
    choice = fit_calibrator(held_out, "auto")
    calibration_s = time.perf_counter() - t
    probs = out_of_fold[choice.calibrator.method]
    amount = np.concatenate(amounts)

    thresholds: dict[str, Any] = {}
    for name, costs in COST_MODELS.items():
        rows = []
        for capacity in CAPACITIES:
            t = time.perf_counter()
            picked = choose_thresholds(probs, labels, amount, float(days), costs, capacity)
            elapsed = time.perf_counter() - t
            row = picked.to_dict(curve=False)
            del row["cost_model"], row["days_covered"]
            rows.append({**row, "search_seconds": elapsed})
        thresholds[name] = {"cost_model": asdict(costs), "choices": rows}
    fill = {c: thresholds_for_capacity(probs, float(days), c) for c in (50, 100, 200)}

    return {
        "benchmark": "calibration",
        "folds": per_fold,
        "rows": len(labels),
        "frauds": int(labels.sum()),
        "days_covered": days,
        "calibration": {
            "raw": _quality(labels, raw),
            **{f"{m}_out_of_fold": _quality(labels, p) for m, p in out_of_fold.items()},
            "auto": {
                "chosen": choice.calibrator.method,
                "out_of_fold": {m: asdict(s) for m, s in choice.out_of_fold.items()},
                "fitted_rows": choice.calibrator.rows,
            },
        },
        "thresholds": thresholds,
        "review_threshold_filling_capacity_nothing_declined": fill,
        "seconds": {
            "features": features_s,
            "training_4_folds": training_s,
            "calibration": calibration_s,
            "total": time.perf_counter() - started,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", type=Path, default=Path("/work/data/lake"))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    result = run(args.lake)
    text = json.dumps(result, indent=2)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")
    sys.stdout.write(text + "\n")


if __name__ == "__main__":
    main()
