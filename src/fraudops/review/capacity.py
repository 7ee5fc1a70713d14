"""The review team's capacity: whether inflow exceeds it, and the threshold that fits it.

Capacity is counted in review cases per day. Audit-sample cases come on top of it (at the
default 0.2 % of approvals they are a small, fixed load) and are not counted here, since
no threshold can make them fewer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import numpy as np
import numpy.typing as npt

from fraudops.errors import InputError, NotEnoughDataError
from fraudops.review.cases import CaseStore


class ScoreSource(Protocol):
    """Where recent model scores come from (the decision log)."""

    def model_scores(self, start: datetime, end: datetime) -> npt.NDArray[np.float64]:
        """The scores the model gave to decisions in ``[start, end)``."""
        ...


@dataclass(frozen=True, slots=True)
class CapacityStatus:
    """Today's review inflow against what the team can review in a day.

    ``inflow_today`` counts review cases decided since midnight UTC; ``inflow_last_24h``
    over the day just past, which does not reset at midnight (the steadier signal early in
    the day).
    """

    daily_capacity: int
    inflow_today: int
    inflow_last_24h: int

    @property
    def exceeded(self) -> bool:
        """Whether today's inflow is already more than the team can review today."""
        return self.inflow_today > self.daily_capacity

    @property
    def running_over(self) -> bool:
        """Whether the last 24 hours brought more cases than a day's capacity."""
        return self.inflow_last_24h > self.daily_capacity

    @property
    def remaining_today(self) -> int:
        """How many more cases fit in today's capacity (0 once exceeded)."""
        return max(0, self.daily_capacity - self.inflow_today)


def capacity_status(store: CaseStore, now: datetime, daily_capacity: int) -> CapacityStatus:
    """How today's and the last 24 hours' review inflow compare with ``daily_capacity``."""
    if daily_capacity < 0:
        raise InputError(f"daily_capacity must be ≥ 0, got {daily_capacity}")
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    end = now + timedelta(microseconds=1)  # include a case decided exactly now
    return CapacityStatus(
        daily_capacity=daily_capacity,
        inflow_today=store.inflow(midnight, end),
        inflow_last_24h=store.inflow(now - timedelta(days=1), end),
    )


@dataclass(frozen=True, slots=True)
class CapacityThreshold:
    """A review threshold that fills a daily capacity, and the evidence it rests on."""

    review_threshold: float
    daily_capacity: int
    decline_threshold: float
    scores_used: int
    window_start: datetime
    window_end: datetime


def review_threshold_for_capacity(
    scores: ScoreSource,
    now: datetime,
    *,
    daily_capacity: int,
    decline_threshold: float,
    days: int = 7,
    min_scores: int = 100,
) -> CapacityThreshold:
    """The lowest review threshold whose reviews would have fitted ``daily_capacity`` on
    average over the last ``days`` days of model scores.

    Uses :func:`fraudops.learn.thresholds.thresholds_for_capacity`. Fallback decisions are
    left out (their scores are not the model's probabilities). Fewer than ``min_scores``
    scores is NotEnoughDataError: a threshold from a handful of scores would be noise.
    """
    from fraudops.learn.thresholds import thresholds_for_capacity

    if days < 1:
        raise InputError(f"days must be at least 1, got {days}")
    start = now - timedelta(days=days)
    recent = scores.model_scores(start, now)
    if len(recent) < min_scores:
        raise NotEnoughDataError(
            f"only {len(recent)} model scores between {start.isoformat()} and"
            f" {now.isoformat()}; at least {min_scores} are needed to set a threshold"
        )
    threshold = thresholds_for_capacity(
        recent,
        days_covered=float(days),
        daily_review_capacity=daily_capacity,
        decline_threshold=decline_threshold,
    )
    return CapacityThreshold(
        review_threshold=threshold,
        daily_capacity=daily_capacity,
        decline_threshold=decline_threshold,
        scores_used=len(recent),
        window_start=start,
        window_end=now,
    )
