"""The policy: thresholds, not the model, turn a probability into an action."""

from __future__ import annotations

import pytest

from fraudops.decide.policy import Policy
from fraudops.errors import ConfigError, ModelError
from fraudops.settings import PolicySettings
from fraudops.types import Action


def test_thresholds_are_inclusive() -> None:
    """A score equal to a threshold takes that threshold's action."""
    policy = Policy(review_threshold=0.2, decline_threshold=0.8)
    scores = [0.0, 0.199, 0.2, 0.5, 0.8, 1.0]
    expected = [
        Action.APPROVE,
        Action.APPROVE,
        Action.REVIEW,
        Action.REVIEW,
        Action.DECLINE,
        Action.DECLINE,
    ]
    assert expected == [policy.decide(s) for s in scores]


def test_policy_comes_from_settings() -> None:
    """The thresholds are the configured ones."""
    policy = Policy.from_settings(PolicySettings(review_threshold=0.1, decline_threshold=0.3))
    expected = [Action.APPROVE, Action.REVIEW, Action.DECLINE]
    assert expected == [policy.decide(s) for s in (0.05, 0.1, 0.3)]


@pytest.mark.parametrize("score", [float("nan"), float("inf"), -0.1, 1.5])
def test_invalid_score_is_a_model_error(score: float) -> None:
    """A score that is not a probability never becomes a decision."""
    with pytest.raises(ModelError, match="probability"):
        Policy(0.2, 0.8).decide(score)


def test_review_above_decline_is_refused() -> None:
    """Thresholds out of order are a configuration error."""
    with pytest.raises(ConfigError, match="exceeds"):
        Policy(review_threshold=0.9, decline_threshold=0.5)
