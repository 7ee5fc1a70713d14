"""Decision records to open cases from, with the fields review cares about set by hand."""

from __future__ import annotations

from datetime import datetime, timedelta

from fraudops.decide.log import DecisionRecord
from fraudops.types import Action, Decision, Reason, Transaction
from tests.unit.review.conftest import T0


def make_record(
    number: int,
    *,
    action: Action = Action.REVIEW,
    score: float = 0.5,
    amount: float = 100.0,
    card: str = "card-1",
    terminal: str = "term-1",
    decided_at: datetime | None = None,
    source: str = "model",
) -> DecisionRecord:
    """The decision on transaction ``tx-<number>``, made ``number`` seconds after T0."""
    transaction_id = f"tx-{number:06d}"
    when = decided_at or T0 + timedelta(seconds=number)
    return DecisionRecord(
        decision=Decision(
            transaction_id=transaction_id,
            action=action,
            score=score,
            reasons=(Reason("amount", 0.3), Reason("terminal_risk_28d", 0.1)),
            model_version="lgbm-test",
            latency_ms=2.5,
            degraded=source != "model",
            degraded_reason=None if source == "model" else "champion:timeout",
            rule_hits=("high_amount",),
            source=source,
        ),
        transaction=Transaction(
            transaction_id=transaction_id,
            timestamp=when - timedelta(milliseconds=3),
            customer_id=card,
            terminal_id=terminal,
            amount=amount,
        ),
        features={"amount": amount, "terminal_risk_28d": 0.25},
        decided_at=when,
        trace_id=None,
    )
