"""The static policy: the last fallback answers from the amount alone and never fails."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest

from fraudops.decide.static import StaticPolicy
from fraudops.errors import ConfigError
from fraudops.types import Action, Transaction

T0 = datetime(2018, 4, 2, 12, tzinfo=UTC)
REVIEW = (Action.REVIEW, StaticPolicy.REVIEW_SCORE)
APPROVE = (Action.APPROVE, StaticPolicy.APPROVE_SCORE)


def _tx(amount: Any) -> Transaction:
    return Transaction("tx-1", T0, "C1", "T1", amount)


def test_documented_scores() -> None:
    """Review reports 0.5 (unsure) and approve 0.0 (nothing scored), as documented."""
    assert (0.5, 0.0) == (StaticPolicy.REVIEW_SCORE, StaticPolicy.APPROVE_SCORE)


@pytest.mark.parametrize(
    ("amount", "expected"),
    [(0.0, APPROVE), (499.99, APPROVE), (500.0, REVIEW), (500.01, REVIEW), (1e9, REVIEW)],
)
def test_reviews_at_or_above_the_amount(amount: float, expected: tuple[Action, float]) -> None:
    """The review amount itself is reviewed; anything below is approved."""
    assert expected == StaticPolicy(review_amount=500.0).decide(_tx(amount))


@pytest.mark.parametrize("amount", [math.nan, math.inf, None, "12", [1.0, 2.0]])
def test_an_unusable_amount_is_reviewed_never_raised(amount: Any) -> None:
    """NaN, infinity or a value that does not compare goes to a person, without an error."""
    assert REVIEW == StaticPolicy(review_amount=500.0).decide(_tx(amount))


def test_review_amount_zero_reviews_everything() -> None:
    """With a zero review amount even a zero payment is reviewed."""
    assert REVIEW == StaticPolicy(review_amount=0.0).decide(_tx(0.0))


@pytest.mark.parametrize("review_amount", [-1.0, math.nan])
def test_an_unusable_review_amount_is_a_config_error(review_amount: float) -> None:
    """A negative or NaN review amount is refused when the policy is built, not per decision."""
    with pytest.raises(ConfigError, match="review_amount"):
        StaticPolicy(review_amount=review_amount)
