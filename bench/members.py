"""The model zoo and the ensemble choice on the handbook's validation folds; prints JSON.

Each learner (defaults of fraudops.learn.members, plus class-weighted variants) is fitted
on the training week of each of the 4 validation folds (training starts 2018-07-11, 07-04,
06-27, 06-20; 7 train, 7 delay, 7 test days) and scored on its test week after known-card
removal. Per learner: mean AP, CP@100 and AUC over folds, fit seconds (CPU and wall, one
thread), and the median time to score one row. Then ``choose_combiner`` compares the
default members alone and combined, on those same test weeks.

    .venv/bin/python bench/members.py --lake /work/data/lake [--no-variants]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from fraudops.learn.dataset import feature_definition, load_feature_table
from fraudops.learn.ensemble import FoldScores, choose_combiner
from fraudops.learn.members import (
    BalancedBaggingLearner,
    Learner,
    LightGBMLearner,
    LogisticLearner,
    MLPLearner,
    XGBoostLearner,
)
from fraudops.learn.metrics import assess
from fraudops.learn.protocol import assessment_rows, prequential_folds, training_rows

VALIDATION_START = date(2018, 7, 11)
N_FOLDS = 4
DELAY_DAYS = 7
ONE_ROW_RUNS = 300
DEFAULT_MEMBERS = ("lightgbm", "xgboost", "logistic", "balanced_bagging", "mlp")
"""The learners the ensemble is chosen from; the variants are compared alone."""


def learners(variants: bool) -> dict[str, Learner]:
    """The default zoo, and (``variants``) the weighted learners to compare with bagging."""
    zoo: dict[str, Learner] = {
        "lightgbm": LightGBMLearner(),
        "xgboost": XGBoostLearner(),
        "logistic": LogisticLearner(),
        "balanced_bagging": BalancedBaggingLearner(),
        "mlp": MLPLearner(),
    }
    if variants:
        zoo |= {
            "lightgbm_balanced": LightGBMLearner("lightgbm_balanced", positive_weight="balanced"),
            "xgboost_balanced": XGBoostLearner("xgboost_balanced", positive_weight="balanced"),
            "logistic_balanced": LogisticLearner("logistic_balanced", positive_weight="balanced"),
        }
    return zoo


def _commit() -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=False).stdout

    return {
        "commit": git("rev-parse", "--short=12", "HEAD").strip(),
        "dirty": bool(git("status", "--porcelain", "--", "src/fraudops/learn", "bench").strip()),
    }


def _one_row_us(predict: Any, rows: np.ndarray) -> float:
    times = []
    for i in range(ONE_ROW_RUNS):
        row = rows[i % len(rows) : i % len(rows) + 1]
        start = time.perf_counter()
        predict(row)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", type=Path, required=True, help="an ingested data lake")
    parser.add_argument("--no-variants", action="store_true", help="only the default learners")
    args = parser.parse_args()
    cpu_start = time.process_time()

    folds = prequential_folds(VALIDATION_START, delay_days=DELAY_DAYS, n_folds=N_FOLDS)
    definition = feature_definition(DELAY_DAYS)
    names = list(definition.names)
    first = min(f.train_start for f in folds)
    last = max(f.test_end for f in folds)
    started = time.perf_counter()
    table = load_feature_table(args.lake, first, last, definition)
    feature_seconds = time.perf_counter() - started
    _log(f"features {first}…{last}: {len(table)} rows in {feature_seconds:.1f} s")

    zoo = learners(not args.no_variants)
    per_member: dict[str, dict[str, list[float]]] = {
        name: {"ap": [], "cp": [], "auc": [], "fit_cpu": [], "fit_wall": [], "one_row_us": []}
        for name in zoo
    }
    fold_info = []
    oof: list[FoldScores] = []
    for fold in folds:
        train = training_rows(table, fold)
        test = assessment_rows(table, fold).frame
        fold_info.append(
            {
                "index": fold.index,
                "train_start": fold.train_start.isoformat(),
                "test_start": fold.test_start.isoformat(),
                "train_rows": len(train),
                "train_frauds": int(train["is_fraud"].sum()),
                "test_rows": len(test),
                "test_frauds": int(test["is_fraud"].sum()),
            }
        )
        matrix = test[names].to_numpy(dtype=np.float64)
        fold_scores = []
        for name, learner in zoo.items():
            cpu, wall = time.process_time(), time.perf_counter()
            member = learner.fit(train[names], train["is_fraud"].to_numpy())
            record = per_member[name]
            record["fit_cpu"].append(time.process_time() - cpu)
            record["fit_wall"].append(time.perf_counter() - wall)
            scores = member.predict(matrix)
            metrics = assess(test, scores)
            record["ap"].append(metrics.average_precision)
            record["cp"].append(metrics.card_precision_at_100)
            record["auc"].append(metrics.roc_auc)
            if fold.index == 0:
                record["one_row_us"].append(_one_row_us(member.predict, matrix))
            if name in DEFAULT_MEMBERS:
                fold_scores.append(scores)
            _log(
                f"fold {fold.index} {name}: AP {metrics.average_precision:.4f}"
                f" CP@100 {metrics.card_precision_at_100:.4f} AUC {metrics.roc_auc:.4f}"
                f" fit {record['fit_cpu'][-1]:.1f} s CPU"
            )
        oof.append(FoldScores(np.column_stack(fold_scores), test["is_fraud"].to_numpy(), test))

    default_names = [name for name in zoo if name in DEFAULT_MEMBERS]
    started = time.perf_counter()
    choice = choose_combiner(oof, default_names)
    choose_seconds = time.perf_counter() - started
    row = oof[0].member_scores
    combine_rows = np.asarray(row)[
        :, [default_names.index(n) for n in choice.combiner.member_names]
    ]
    combiner = choice.combiner.to_dict()
    if combiner["kind"] == "rank_average":  # thousands of reference points: not for the report
        combiner["references"] = f"{len(combiner['references'])} members × ≤ 2000 points"

    def mean(values: list[float]) -> float:
        return round(float(np.mean(values)), 4)

    result = {
        **_commit(),
        "protocol": {
            "validation_train_start": VALIDATION_START.isoformat(),
            "folds": N_FOLDS,
            "delay_days": DELAY_DAYS,
            "features": len(names),
        },
        "folds": fold_info,
        "feature_build_seconds": round(feature_seconds, 1),
        "members": {
            name: {
                "learner": repr(zoo[name]),
                "average_precision": mean(r["ap"]),
                "average_precision_std": round(float(np.std(r["ap"])), 4),
                "card_precision_at_100": mean(r["cp"]),
                "roc_auc": mean(r["auc"]),
                "fit_cpu_seconds": round(float(np.mean(r["fit_cpu"])), 2),
                "fit_wall_seconds": round(float(np.mean(r["fit_wall"])), 2),
                "predict_one_row_us": round(r["one_row_us"][0], 1),
                "fold_average_precision": [round(v, 4) for v in r["ap"]],
            }
            for name, r in per_member.items()
        },
        "ensemble": {
            "chosen": choice.name,
            "combiner": combiner,
            "combine_one_row_us": round(_one_row_us(choice.combiner.combine, combine_rows), 1),
            "choose_seconds": round(choose_seconds, 1),
            "min_gain": choice.min_gain,
            "table": [
                {
                    key: round(value, 4) if isinstance(value, float) else value
                    for key, value in candidate.as_dict().items()
                    if key != "fold_average_precision"
                }
                | {
                    "fold_average_precision": [
                        round(v, 4) for v in candidate.fold_average_precision
                    ]
                }
                for candidate in choice.table
            ],
        },
        "total_cpu_seconds": round(time.process_time() - cpu_start, 1),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
