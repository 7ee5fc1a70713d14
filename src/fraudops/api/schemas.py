"""The API's wire formats: what a client sends and gets back, validated at the edge.

Inputs forbid unknown fields, so a misspelt field is a 422 naming it rather than a value
silently dropped, and a field that looks like a card number is refused (and never echoed
back or logged).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from fraudops.ingest.currency import ISO_4217
from fraudops.types import Action, Decision, Label, LabelSource, Transaction

MAX_AMOUNT = 1_000_000.0
"""The largest amount a single card transaction may carry, in its currency."""

Identifier = Annotated[
    str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$")
]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class TransactionIn(_Input):
    """One card transaction to decide."""

    transaction_id: Identifier
    timestamp: AwareDatetime = Field(description="When it happened, with a UTC offset.")
    customer_id: Identifier = Field(description="The card (pseudonymous id, never a PAN).")
    terminal_id: Identifier
    amount: float = Field(ge=0.0, le=MAX_AMOUNT, allow_inf_nan=False)
    currency: str = Field(default="EUR", min_length=3, max_length=3)
    channel: str | None = Field(default=None, max_length=32)
    country: str | None = Field(default=None, min_length=2, max_length=2)
    merchant_category: str | None = Field(default=None, max_length=8)
    terminal_x: float | None = Field(default=None, allow_inf_nan=False)
    terminal_y: float | None = Field(default=None, allow_inf_nan=False)

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        code = value.upper()
        if code not in ISO_4217:
            raise ValueError("not an ISO 4217 currency code")
        return code

    def to_transaction(self) -> Transaction:
        """The domain record."""
        return Transaction(
            transaction_id=self.transaction_id,
            timestamp=self.timestamp,
            customer_id=self.customer_id,
            terminal_id=self.terminal_id,
            amount=self.amount,
            currency=self.currency,
            channel=self.channel,
            country=self.country,
            merchant_category=self.merchant_category,
            terminal_x=self.terminal_x,
            terminal_y=self.terminal_y,
        )


class LabelIn(_Input):
    """An analyst's verdict or a chargeback for one transaction."""

    transaction_id: Identifier
    is_fraud: bool
    source: Literal["analyst", "chargeback"]
    known_at: AwareDatetime = Field(description="When the truth became known.")

    def to_label(self) -> Label:
        """The domain record."""
        return Label(self.transaction_id, self.is_fraud, LabelSource(self.source), self.known_at)


class ReasonOut(BaseModel):
    """One feature that pushed the score up, with its contribution in log-odds."""

    code: str
    contribution: float


class DecisionOut(BaseModel):
    """The answer for one transaction."""

    transaction_id: str
    action: Action
    score: float = Field(description="Fraud probability from whatever decided (see source).")
    reasons: list[ReasonOut]
    rule_hits: list[str]
    model_version: str
    source: str = Field(description="model, last_good, rules or static.")
    degraded: bool
    degraded_reason: str | None = Field(description="step:reason pairs of what failed.")
    latency_ms: float

    @classmethod
    def of(cls, decision: Decision) -> dict[str, object]:
        """``decision`` as the JSON-ready dict this model describes (no validation cost)."""
        return {
            "transaction_id": decision.transaction_id,
            "action": decision.action.value,
            "score": decision.score if math.isfinite(decision.score) else None,
            "reasons": [{"code": r.code, "contribution": r.contribution} for r in decision.reasons],
            "rule_hits": list(decision.rule_hits),
            "model_version": decision.model_version,
            "source": decision.source,
            "degraded": decision.degraded,
            "degraded_reason": decision.degraded_reason,
            "latency_ms": round(decision.latency_ms, 3),
        }


class FieldProblem(BaseModel):
    """One thing wrong with a request: where, and what."""

    field: str
    message: str


class Problem(BaseModel):
    """An error response; ``errors`` lists each bad field of a 422."""

    detail: str
    errors: list[FieldProblem] = Field(default_factory=list)


class BatchItemOut(BaseModel):
    """One item of a batch: its decision, or why it was rejected."""

    index: int
    status: Literal["decided", "duplicate", "rejected"]
    decision: DecisionOut | None = None
    errors: list[FieldProblem] = Field(default_factory=list)


class BatchOut(BaseModel):
    """A batch's results, in input order; the counts always add up to ``received``."""

    received: int
    accepted: int
    duplicates: int
    rejected: int
    results: list[BatchItemOut]


class LabelOut(BaseModel):
    """What became of a label."""

    transaction_id: str
    stored: bool = Field(description="Kept for training (decision log database).")
    applied: bool = Field(description="Applied to the online state (terminal risk).")
    reason: str | None = None


class ComponentStatus(BaseModel):
    """Readiness of one part of the service."""

    ok: bool
    detail: str


class Readiness(BaseModel):
    """Whether the service should get traffic, and the state of each part."""

    ready: bool
    components: dict[str, ComponentStatus]
    checked_at: datetime
