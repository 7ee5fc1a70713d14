"""The static policy: the last step of the fallback chain, which answers from the amount alone.

When neither model nor rules can answer, a payment still gets a decision within its
deadline. This policy needs nothing but the transaction, holds no state and cannot fail:
large or unreadable amounts go to a person, the rest are approved.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from fraudops.errors import ConfigError
from fraudops.types import Action, Transaction


@dataclass(frozen=True, slots=True)
class StaticPolicy:
    """Review at or above ``review_amount``, approve below; never raises.

    The scores are fixed, not estimated: ``REVIEW_SCORE`` (0.5) says "unsure, a person
    should look" and ``APPROVE_SCORE`` (0.0) that nothing was scored. An amount that is not
    a number (NaN, or anything that does not compare) is reviewed: the safe answer when the
    input itself is in doubt.
    """

    review_amount: float

    REVIEW_SCORE: ClassVar[float] = 0.5
    APPROVE_SCORE: ClassVar[float] = 0.0

    def __post_init__(self) -> None:
        if math.isnan(self.review_amount) or self.review_amount < 0.0:
            raise ConfigError(
                f"review_amount must be a non-negative amount, got {self.review_amount}"
            )

    def decide(self, tx: Transaction) -> tuple[Action, float]:
        """The action and fixed score for ``tx``."""
        try:
            below = bool(tx.amount < self.review_amount)
        # The last fallback must answer whatever it is handed (a None or an array slipped
        # past typing): anything that does not compare is treated like a NaN amount.
        except Exception:
            below = False
        if below:
            return Action.APPROVE, self.APPROVE_SCORE
        return Action.REVIEW, self.REVIEW_SCORE
