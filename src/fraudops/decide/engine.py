"""The in-process decision path: features → model → policy, timed, for one transaction."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from fraudops.types import Action, Decision, Transaction

if TYPE_CHECKING:
    from fraudops.decide.policy import Policy
    from fraudops.decide.scorer import Scorer
    from fraudops.features.online import OnlineFeatures
    from fraudops.types import Label


class DecisionEngine:
    """Turns one transaction into a Decision, updating the online feature state as it goes.

    Reasons (the model's own per-feature contributions) are computed for the actions in
    ``explain``, by default review and decline: they are what an analyst or a declined
    customer is shown, and computing them costs several times the score itself, so doing it
    for every approval would put the latency budget into answers nobody reads.
    """

    def __init__(
        self,
        features: OnlineFeatures,
        scorer: Scorer,
        policy: Policy,
        *,
        top_reasons: int = 3,
        explain: frozenset[Action] = frozenset({Action.REVIEW, Action.DECLINE}),
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.features = features
        self.scorer = scorer
        self.policy = policy
        self.top_reasons = top_reasons
        self.explain = explain
        self._timer = timer

    def decide(self, tx: Transaction) -> Decision:
        """Score ``tx`` and choose an action; the transaction joins the card's history."""
        started = self._timer()
        row = self.features.compute_and_update(tx)
        score = self.scorer.score(row)
        action: Action = self.policy.decide(score)
        reasons = self.scorer.explain(row, top=self.top_reasons) if action in self.explain else ()
        return Decision(
            transaction_id=tx.transaction_id,
            action=action,
            score=score,
            reasons=reasons,
            model_version=self.scorer.version,
            latency_ms=(self._timer() - started) * 1000.0,
        )

    def learn(self, label: Label) -> None:
        """Feed a verdict or chargeback into the online state (terminal risk)."""
        self.features.observe_label(label)
