"""The policy: thresholds that turn a fraud probability into approve, review or decline.

Thresholds live here, outside the model, so risk teams move them without retraining and a
new model never silently changes how strict the system is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fraudops.errors import ConfigError, ModelError
from fraudops.settings import PolicySettings
from fraudops.types import Action


@dataclass(frozen=True, slots=True)
class Policy:
    """Decline at or above ``decline_threshold``, review at or above ``review_threshold``."""

    review_threshold: float
    decline_threshold: float

    def __post_init__(self) -> None:
        for name, value in (
            ("review_threshold", self.review_threshold),
            ("decline_threshold", self.decline_threshold),
        ):
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise ConfigError(f"{name} must be in [0, 1], got {value}")
        if self.review_threshold > self.decline_threshold:
            raise ConfigError(
                f"review_threshold {self.review_threshold} exceeds"
                f" decline_threshold {self.decline_threshold}"
            )

    @classmethod
    def from_settings(cls, settings: PolicySettings) -> Policy:
        """The policy configured in ``settings.policy``."""
        return cls(settings.review_threshold, settings.decline_threshold)

    def decide(self, score: float) -> Action:
        """The action for a fraud probability; an invalid score is a ModelError."""
        if not (math.isfinite(score) and 0.0 <= score <= 1.0):
            raise ModelError(f"score must be a probability in [0, 1], got {score!r}")
        if score >= self.decline_threshold:
            return Action.DECLINE
        if score >= self.review_threshold:
            return Action.REVIEW
        return Action.APPROVE
