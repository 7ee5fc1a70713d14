"""The in-process decision path: features → scorer → policy, with reasons where they matter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from fraudops.decide.engine import DecisionEngine
from fraudops.decide.policy import Policy
from fraudops.features import DEFAULT_FEATURES, InMemoryFeatureState, OnlineFeatures
from fraudops.types import Action, Reason, Transaction

T0 = datetime(2018, 4, 2, 12, tzinfo=UTC)
AMOUNT = DEFAULT_FEATURES.names.index("amount")
CARD_COUNT_1D = DEFAULT_FEATURES.names.index("card_tx_count_1d")


class AmountScorer:
    """A transparent stand-in model: the score is the amount over 1,000, capped at 1."""

    version = "amount-over-1000"
    feature_names = DEFAULT_FEATURES.names

    def __init__(self) -> None:
        self.seen: list[npt.NDArray[np.float64]] = []
        self.explained = 0

    def score(self, features: npt.NDArray[np.float64]) -> float:
        self.seen.append(features.copy())
        return min(float(features[AMOUNT]) / 1000.0, 1.0)

    def score_batch(self, features: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.minimum(features[:, AMOUNT] / 1000.0, 1.0)

    def explain(self, features: npt.NDArray[np.float64], top: int = 3) -> tuple[Reason, ...]:
        self.explained += 1
        return (Reason("amount", float(features[AMOUNT])),)[:top]


def _engine() -> tuple[DecisionEngine, AmountScorer]:
    scorer = AmountScorer()
    online = OnlineFeatures(DEFAULT_FEATURES, InMemoryFeatureState())
    return DecisionEngine(online, scorer, Policy(0.2, 0.8)), scorer


def _tx(tx_id: str, amount: float, minutes: int = 0) -> Transaction:
    return Transaction(tx_id, T0 + timedelta(minutes=minutes), "card-1", "term-1", amount)


def test_action_follows_the_policy_thresholds() -> None:
    """Scores below, between and above the thresholds give approve, review and decline."""
    engine, _ = _engine()
    actions = [
        engine.decide(_tx(f"t{n}", amount, n)).action for n, amount in enumerate((50, 300, 900))
    ]
    assert actions == [Action.APPROVE, Action.REVIEW, Action.DECLINE]


def test_reasons_come_with_review_and_decline_only() -> None:
    """Flagged decisions carry the model's reasons; approvals skip the costly explanation."""
    engine, scorer = _engine()
    approved = engine.decide(_tx("a", 50))
    declined = engine.decide(_tx("d", 900, 1))
    assert ((), (Reason("amount", 900.0),), 1) == (
        approved.reasons,
        declined.reasons,
        scorer.explained,
    )


def test_each_decision_joins_the_card_history() -> None:
    """The second transaction of a card is scored with the first one in its history."""
    engine, scorer = _engine()
    engine.decide(_tx("first", 10))
    engine.decide(_tx("second", 10, 5))
    assert [float(row[CARD_COUNT_1D]) for row in scorer.seen] == [1.0, 2.0]


def test_decision_records_model_version_and_latency() -> None:
    """A decision names the model that made it and how long it took, measured by its timer."""
    ticks = iter([1.000, 1.0005])
    scorer = AmountScorer()
    engine = DecisionEngine(
        OnlineFeatures(DEFAULT_FEATURES, InMemoryFeatureState()),
        scorer,
        Policy(0.2, 0.8),
        timer=lambda: next(ticks),
    )
    decision = engine.decide(_tx("t", 10))
    assert (decision.model_version, round(decision.latency_ms, 6)) == ("amount-over-1000", 0.5)
