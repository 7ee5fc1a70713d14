"""The handbook's fraud-detection metrics, computed on one test set.

AUC ROC and average precision are threshold-free and pooled over the test set. Card
precision top-k is what an investigation team of fixed daily capacity sees: each day it
checks the k most suspicious cards, and a card it has already caught is blocked and so
never shows up again. False positives at a recall count the genuine transactions a team
would have to wade through to catch that share of the fraud.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from fraudops.errors import NotEnoughDataError

RECALLS: tuple[float, ...] = (0.5, 0.7, 0.8)
"""The recalls at which false positives are reported."""

TOP_K = 100
"""The handbook's daily investigation capacity, in cards."""


def _check_labels(y_true: npt.ArrayLike) -> npt.NDArray[np.int8]:
    labels = np.asarray(y_true, dtype=np.int8)
    if labels.size == 0 or labels.min() == labels.max():
        raise NotEnoughDataError("a metric needs both fraudulent and genuine transactions")
    return labels


def roc_auc(y_true: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """Area under the ROC curve, pooled over all the transactions given."""
    return float(roc_auc_score(_check_labels(y_true), np.asarray(scores, dtype=np.float64)))


def average_precision(y_true: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """Step-wise (uninterpolated) average precision, pooled over all the transactions given."""
    labels = _check_labels(y_true)
    return float(average_precision_score(labels, np.asarray(scores, dtype=np.float64)))


def false_positives_at_recall(y_true: npt.ArrayLike, scores: npt.ArrayLike, recall: float) -> int:
    """Genuine transactions scored at or above the highest threshold that reaches ``recall``."""
    if not 0.0 < recall <= 1.0:
        raise ValueError(f"recall must be in (0, 1], got {recall}")
    labels = _check_labels(y_true)
    values = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-values, kind="stable")
    ranked_scores = values[order]
    frauds = np.cumsum(labels[order])
    # Transactions tied on score share one threshold, so the curve only has a point at the
    # last of each run of equal scores.
    last_of_tie = np.r_[ranked_scores[1:] != ranked_scores[:-1], True]
    frauds_at = frauds[last_of_tie]
    seen_at = np.flatnonzero(last_of_tie) + 1
    needed = recall * frauds[-1]
    point = int(np.argmax(frauds_at >= needed - 1e-9 * frauds[-1]))
    return int(seen_at[point] - frauds_at[point])


def card_precision_at_k(
    frame: pd.DataFrame, scores: npt.ArrayLike, k: int = TOP_K
) -> tuple[float, list[float]]:
    """Card precision top-k: the mean over test days, and each day's value in order.

    ``frame`` has columns ``ts``, ``customer_id`` and ``is_fraud``; ``scores`` is aligned
    with its rows. Each day, cards caught on an earlier day (in that day's top k and
    compromised) are dropped; the rest are ranked by their highest score that day, and the
    day's value is the number of compromised cards among the top k, divided by k.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    cards = pd.DataFrame(
        {
            "day": frame["ts"].dt.tz_convert("UTC").dt.date.to_numpy(),
            "card": frame["customer_id"].to_numpy(),
            "label": frame["is_fraud"].to_numpy(dtype=np.int8),
            "score": np.asarray(scores, dtype=np.float64),
        }
    )
    if cards.empty:
        raise NotEnoughDataError("card precision needs at least one test transaction")
    detected: set[object] = set()
    per_day: list[float] = []
    for _, day in cards.groupby("day", sort=True):
        remaining = day[~day["card"].isin(detected)]
        by_card = remaining.groupby("card", sort=True).agg(
            score=("score", "max"), label=("label", "max")
        )
        top = by_card.sort_values("score", ascending=False, kind="stable").head(k)
        caught = top.index[top["label"].to_numpy() == 1]
        per_day.append(len(caught) / k)
        detected.update(caught)
    return float(np.mean(per_day)), per_day


@dataclass(frozen=True, slots=True)
class Metrics:
    """The handbook's metrics for one test set."""

    roc_auc: float
    average_precision: float
    card_precision_at_100: float
    false_positives_at_recall_50: int
    false_positives_at_recall_70: int
    false_positives_at_recall_80: int

    def as_dict(self) -> dict[str, float | int]:
        """The metrics by their report key (counts stay integers)."""
        return dict(asdict(self))


METRIC_KEYS: tuple[str, ...] = (
    "roc_auc",
    "average_precision",
    "card_precision_at_100",
    "false_positives_at_recall_50",
    "false_positives_at_recall_70",
    "false_positives_at_recall_80",
)


def assess(frame: pd.DataFrame, scores: npt.ArrayLike) -> Metrics:
    """Every metric for one test set (columns ``ts``, ``customer_id``, ``is_fraud``)."""
    labels = _check_labels(frame["is_fraud"].to_numpy())
    values = np.asarray(scores, dtype=np.float64)
    fp50, fp70, fp80 = (false_positives_at_recall(labels, values, r) for r in RECALLS)
    return Metrics(
        roc_auc=roc_auc(labels, values),
        average_precision=average_precision(labels, values),
        card_precision_at_100=card_precision_at_k(frame, values, k=TOP_K)[0],
        false_positives_at_recall_50=fp50,
        false_positives_at_recall_70=fp70,
        false_positives_at_recall_80=fp80,
    )
