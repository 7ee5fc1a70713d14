"""Review and decline thresholds chosen from what mistakes cost and what the team can review.

The policy has two thresholds on the calibrated fraud probability ``p``::

    p ≥ decline_threshold                      decline: the payment is blocked at once
    review_threshold ≤ p < decline_threshold   review:  the payment is held for an analyst
    p < review_threshold                       approve

What each outcome costs (``CostModel``), per transaction, with these assumptions:

- An approved fraud is lost: ``missed_fraud_multiple × amount`` (the issuer refunds the
  cardholder; a multiple above 1 adds chargeback fees and handling).
- A reviewed transaction costs ``review_cost`` (analyst time), fraud or not. The analyst
  is taken to be right: a reviewed fraud is blocked (caught, nothing lost) and a reviewed
  genuine payment is released (the delay is part of ``review_cost``).
- A declined fraud is caught and costs nothing; it is not reviewed.
- A declined genuine payment costs ``false_decline_cost`` (lost margin, a customer who
  calls, or leaves).
- An approved genuine payment costs nothing.

So a fraud is *caught* when ``p ≥ review_threshold``, and the expected cost of a pair of
thresholds is measured on labelled, held-out data (the validation folds, scored with an
out-of-fold calibrator): missed fraud amounts, plus reviews, plus false declines. The
review team's capacity is a limit on *average* reviews per day over the data given; busy
days will see more.

``choose_thresholds`` searches every pair on a grid of candidate thresholds (the scores
themselves, at log-spaced ranks so the top of the ranking, where the decisions are, is
searched finely) with one vectorised pass; ``thresholds_for_capacity`` gives the review
threshold that fills a capacity exactly. ``write_policy_file`` stores a choice, with the
reasons for it, as the YAML file ``PolicySettings.file`` points the service at.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml

from fraudops.decide.policy import POLICY_FILE_FORMAT, Policy
from fraudops.errors import InputError, NotEnoughDataError

FloatArray = npt.NDArray[np.float64]

CANDIDATES = 1000
"""Candidate thresholds searched by default: a million (review, decline) pairs."""


@dataclass(frozen=True, slots=True)
class CostModel:
    """What each outcome of a decision costs, in the currency of the transaction amounts.

    The defaults are rough figures for card fraud, to be replaced by a bank's own:

    - ``missed_fraud_multiple`` 1.0: an approved fraud loses its amount, no more.
    - ``review_cost`` 5.0: about five minutes of an analyst's time.
    - ``false_decline_cost`` 20.0: a wrongly declined customer; published estimates put
      false-decline losses (lost sales, churn, support calls) well above a review.
    """

    missed_fraud_multiple: float = 1.0
    review_cost: float = 5.0
    false_decline_cost: float = 20.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not (math.isfinite(value) and value >= 0.0):
                raise InputError(f"cost model: {name} must be a finite number ≥ 0, got {value}")


@dataclass(frozen=True, slots=True)
class CostPoint:
    """One point of the cost curve: a review threshold and the best decline threshold for it."""

    review_threshold: float
    decline_threshold: float
    expected_cost_per_day: float
    reviews_per_day: float
    declines_per_day: float
    recall: float


@dataclass(frozen=True, slots=True)
class ThresholdChoice:
    """The chosen thresholds, what they are expected to cost and do, and the curve around them.

    ``recall`` is the share of frauds caught (declined or reviewed), ``amount_recall`` the
    share of fraud amount; ``baseline_cost_per_day`` is the cost of approving everything.
    ``curve`` has one point per candidate review threshold, highest first, each with the
    cheapest decline threshold the capacity allows.
    """

    review_threshold: float
    decline_threshold: float
    expected_cost: float
    expected_cost_per_day: float
    baseline_cost_per_day: float
    reviews_per_day: float
    declines_per_day: float
    false_declines_per_day: float
    recall: float
    amount_recall: float
    days_covered: float
    daily_review_capacity: int | None
    cost_model: CostModel
    curve: tuple[CostPoint, ...]

    @property
    def policy(self) -> Policy:
        """The chosen thresholds as the decision path's policy."""
        return Policy(self.review_threshold, self.decline_threshold)

    def to_dict(self, *, curve: bool = True) -> dict[str, Any]:
        """The choice as JSON-ready values; ``curve=False`` leaves the curve out."""
        data = asdict(self)
        if not curve:
            del data["curve"]
        return data


@dataclass(frozen=True, slots=True)
class _Checked:
    probs: FloatArray
    labels: npt.NDArray[np.int8]
    amounts: FloatArray


def _check(
    probabilities: npt.ArrayLike, labels: npt.ArrayLike, amounts: npt.ArrayLike, days: float
) -> _Checked:
    probs = np.asarray(probabilities, dtype=np.float64)
    if probs.ndim != 1 or not len(probs):
        raise InputError(f"probabilities must be a non-empty 1-d array, got shape {probs.shape}")
    bad = ~(np.isfinite(probs) & (probs >= 0.0) & (probs <= 1.0))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"probabilities must lie in [0, 1]; {int(bad.sum())} do not, the first at row"
            f" {first}: {probs[first]!r}"
        )
    raw_labels = np.asarray(labels)
    raw_amounts = np.asarray(amounts, dtype=np.float64)
    for name, values in (("labels", raw_labels), ("amounts", raw_amounts)):
        if values.shape != probs.shape:
            raise InputError(f"{name} hold {values.shape} values for {probs.shape} probabilities")
    if not np.isin(raw_labels, (0, 1)).all():
        raise InputError("labels must be 0 (genuine) or 1 (fraud)")
    if not (np.isfinite(raw_amounts).all() and (raw_amounts >= 0.0).all()):
        raise InputError("amounts must be finite and ≥ 0")
    if not (math.isfinite(days) and days > 0.0):
        raise InputError(f"days_covered must be a positive number of days, got {days}")
    return _Checked(probs, raw_labels.astype(np.int8), raw_amounts)


def _check_capacity(capacity: int | None) -> None:
    if capacity is not None and not (isinstance(capacity, int) and capacity >= 0):
        raise InputError(f"daily_review_capacity must be a whole number ≥ 0, got {capacity!r}")


def candidate_thresholds(probabilities: FloatArray, candidates: int = CANDIDATES) -> FloatArray:
    """The thresholds searched, highest first: 1.0, then scores at log-spaced ranks.

    With no more distinct scores than ``candidates`` every distinct score is a candidate,
    so the search is exact. Otherwise the k-th highest score for ``k`` log-spaced from 1
    to n: a step of about 1 % in the number of transactions flagged, near the top and
    further down alike. 1.0 stands for "as little as the policy can": only scores of
    exactly 1 pass it.
    """
    if candidates < 2:
        raise InputError(f"candidates must be at least 2, got {candidates}")
    distinct = np.unique(probabilities)
    if len(distinct) <= candidates:
        chosen = distinct
    else:
        ranked = np.sort(probabilities)[::-1]
        ranks = np.unique(np.geomspace(1, len(ranked), candidates - 1).round().astype(np.int64))
        chosen = ranked[ranks - 1]
    thresholds: FloatArray = np.unique(np.append(chosen, 1.0))[::-1]
    return thresholds


def choose_thresholds(
    probabilities: npt.ArrayLike,
    labels: npt.ArrayLike,
    amounts: npt.ArrayLike,
    days_covered: float,
    cost_model: CostModel | None = None,
    daily_review_capacity: int | None = None,
    *,
    candidates: int = CANDIDATES,
) -> ThresholdChoice:
    """The (review, decline) thresholds of least expected cost within the review capacity.

    ``probabilities`` are calibrated and held out (the model and the calibrator never saw
    these rows), ``labels`` their 0/1 outcomes, ``amounts`` their amounts, ``days_covered``
    how many days the rows span (reviews per day = reviews / days). With a capacity, only
    pairs reviewing at most that many transactions a day on average are allowed; pairs
    where the thresholds are equal review nothing, so one always is. Ties in cost go to the
    higher thresholds (less intervention).
    """
    costs = cost_model if cost_model is not None else CostModel()
    _check_capacity(daily_review_capacity)
    data = _check(probabilities, labels, amounts, days_covered)
    frauds = int(data.labels.sum())
    if frauds == 0:
        raise NotEnoughDataError("choosing thresholds needs at least one fraud among the rows")

    order = np.argsort(-data.probs, kind="stable")
    ascending = data.probs[order][::-1]
    is_fraud = data.labels[order].astype(np.float64)
    fraud_amount = np.where(is_fraud == 1.0, data.amounts[order], 0.0)
    # Totals over the top n rows, for n = 0 … N.
    caught_amount = np.concatenate([[0.0], np.cumsum(fraud_amount)])
    caught_frauds = np.concatenate([[0.0], np.cumsum(is_fraud)])
    genuine = np.concatenate([[0.0], np.cumsum(1.0 - is_fraud)])
    total_fraud_amount = float(caught_amount[-1])

    thresholds = candidate_thresholds(data.probs, candidates)
    flagged = len(ascending) - np.searchsorted(ascending, thresholds, side="left")

    # Rows i are review thresholds, columns j decline thresholds (both highest first). The
    # cost splits into a part of i (missed fraud, reviews down to i) and a part of j (false
    # declines, minus the declined rows that are not reviewed). A pair is allowed when
    # decline ≥ review (j ≤ i) and, with a capacity, when its reviews fit: the flagged
    # counts grow with j, so that is j ≥ the first column flagging enough rows.
    review_part = (
        costs.missed_fraud_multiple * (total_fraud_amount - caught_amount[flagged])
        + costs.review_cost * flagged
    )
    decline_part = costs.false_decline_cost * genuine[flagged] - costs.review_cost * flagged
    columns = np.arange(len(thresholds))
    lowest = np.zeros(len(thresholds), dtype=np.int64)
    if daily_review_capacity is not None:
        # The small slack keeps a pair at exactly the capacity from failing on rounding.
        room = daily_review_capacity * days_covered * (1.0 + 1e-12)
        lowest = np.searchsorted(flagged, flagged - room, side="left")
    allowed = (columns[None, :] <= columns[:, None]) & (columns[None, :] >= lowest[:, None])
    cost = np.where(allowed, decline_part[None, :], np.inf) + review_part[:, None]

    best_decline = np.argmin(cost, axis=1)  # first minimum: the higher decline threshold
    best_cost = cost[np.arange(len(thresholds)), best_decline]
    i = int(np.argmin(best_cost))  # first minimum: the higher review threshold
    j = int(best_decline[i])

    def per_day(value: float) -> float:
        return float(value) / days_covered

    curve = tuple(
        CostPoint(
            review_threshold=float(thresholds[r]),
            decline_threshold=float(thresholds[best_decline[r]]),
            expected_cost_per_day=per_day(best_cost[r]),
            reviews_per_day=per_day(flagged[r] - flagged[best_decline[r]]),
            declines_per_day=per_day(flagged[best_decline[r]]),
            recall=float(caught_frauds[flagged[r]]) / frauds,
        )
        for r in range(len(thresholds))
    )
    n_review, n_decline = int(flagged[i]), int(flagged[j])
    return ThresholdChoice(
        review_threshold=float(thresholds[i]),
        decline_threshold=float(thresholds[j]),
        expected_cost=float(best_cost[i]),
        expected_cost_per_day=per_day(best_cost[i]),
        baseline_cost_per_day=per_day(costs.missed_fraud_multiple * total_fraud_amount),
        reviews_per_day=per_day(n_review - n_decline),
        declines_per_day=per_day(n_decline),
        false_declines_per_day=per_day(genuine[n_decline]),
        recall=float(caught_frauds[n_review]) / frauds,
        amount_recall=(
            float(caught_amount[n_review]) / total_fraud_amount if total_fraud_amount else 1.0
        ),
        days_covered=float(days_covered),
        daily_review_capacity=daily_review_capacity,
        cost_model=costs,
        curve=curve,
    )


def thresholds_for_capacity(
    probabilities: npt.ArrayLike,
    days_covered: float,
    daily_review_capacity: int,
    decline_threshold: float = 1.0,
) -> float:
    """The lowest review threshold whose reviews fit ``daily_review_capacity`` on average.

    Reviewed are the rows with ``review_threshold ≤ p < decline_threshold``. The answer is
    one of the probabilities (tied scores are reviewed together or not at all), or
    ``decline_threshold`` itself (review nothing) when even the highest score below it
    would overflow the capacity.
    """
    _check_capacity(daily_review_capacity)
    probs = np.asarray(probabilities, dtype=np.float64)
    _check(probs, np.zeros(probs.shape, dtype=np.int8), np.zeros(probs.shape), days_covered)
    if not (math.isfinite(decline_threshold) and 0.0 <= decline_threshold <= 1.0):
        raise InputError(f"decline_threshold must be in [0, 1], got {decline_threshold}")
    below = np.sort(probs[probs < decline_threshold])[::-1]
    if not len(below):
        return float(decline_threshold)
    values, first = np.unique(-below, return_index=True)  # distinct values, highest first
    # Reviewing down to the k-th distinct value reviews every row before the next one.
    reviewed = np.append(first[1:], len(below))
    fits = np.flatnonzero(reviewed <= daily_review_capacity * days_covered * (1.0 + 1e-12))
    if not len(fits):
        return float(decline_threshold)
    return float(-values[fits[-1]])


def write_policy_file(
    path: Path,
    choice: ThresholdChoice,
    *,
    model_version: str,
    cost_model: CostModel,
    capacity: int | None,
    created_at: datetime,
) -> None:
    """Write the chosen thresholds, with why they were chosen, as a policy file (YAML).

    ``cost_model`` and ``capacity`` must be the ones ``choice`` was made with: the file
    states them as its reasons. The file appears whole or not at all.
    """
    if cost_model != choice.cost_model or capacity != choice.daily_review_capacity:
        raise InputError(
            "the cost model and capacity given are not the ones the thresholds were chosen"
            f" with ({choice.cost_model}, capacity {choice.daily_review_capacity})"
        )
    if not model_version:
        raise InputError("model_version must name the model the thresholds were chosen for")
    limit = "no limit on reviews" if capacity is None else f"at most {capacity} reviews a day"
    document = {
        "format": POLICY_FILE_FORMAT,
        "review_threshold": choice.review_threshold,
        "decline_threshold": choice.decline_threshold,
        "provenance": {
            "reason": (
                f"least expected cost ({choice.expected_cost_per_day:.2f} a day against"
                f" {choice.baseline_cost_per_day:.2f} approving everything) with {limit},"
                f" on {choice.days_covered:g} days of held-out, calibrated scores of model"
                f" {model_version}"
            ),
            "model_version": model_version,
            "created_at": created_at.isoformat(),
            "cost_model": asdict(cost_model),
            "daily_review_capacity": capacity,
            "days_covered": choice.days_covered,
            "expected": {
                "cost_per_day": choice.expected_cost_per_day,
                "baseline_cost_per_day": choice.baseline_cost_per_day,
                "reviews_per_day": choice.reviews_per_day,
                "declines_per_day": choice.declines_per_day,
                "false_declines_per_day": choice.false_declines_per_day,
                "recall": choice.recall,
                "amount_recall": choice.amount_recall,
            },
        },
    }
    if path.is_dir():
        raise InputError(f"{path}: is a directory; give the path of the policy file")
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
