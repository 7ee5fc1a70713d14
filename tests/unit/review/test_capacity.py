"""Capacity: the review threshold that fills a daily capacity, from recent model scores."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt
import pytest

from fraudops.errors import NotEnoughDataError
from fraudops.review.capacity import review_threshold_for_capacity
from tests.unit.review.conftest import T0


class Scores:
    """A week of scores: 1000 a day, evenly spread over [0, 1)."""

    def __init__(self, count: int = 7000) -> None:
        self.scores = np.arange(count, dtype=np.float64) / count
        self.asked: list[tuple[datetime, datetime]] = []

    def model_scores(self, start: datetime, end: datetime) -> npt.NDArray[np.float64]:
        self.asked.append((start, end))
        return self.scores


def test_the_threshold_reviews_the_capacity_on_average() -> None:
    """With 1000 scores a day and room for 50, the top 5 % below decline are reviewed."""
    scores = Scores()
    choice = review_threshold_for_capacity(
        scores, T0, daily_capacity=50, decline_threshold=0.99, days=7
    )
    reviewed = ((scores.scores >= choice.review_threshold) & (scores.scores < 0.99)).sum()
    assert 50 * 7 == reviewed
    assert [(T0 - timedelta(days=7), T0)] == scores.asked
    assert 7000 == choice.scores_used


def test_too_few_scores_are_not_enough_to_set_a_threshold() -> None:
    """Fewer than min_scores scores raise NotEnoughDataError saying how many there were."""
    with pytest.raises(NotEnoughDataError, match="only 20 model scores"):
        review_threshold_for_capacity(
            Scores(20), T0, daily_capacity=5, decline_threshold=0.9, min_scores=100
        )
