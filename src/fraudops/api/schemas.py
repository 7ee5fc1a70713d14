"""The API's wire formats: what a client sends and gets back, validated at the edge.

Inputs forbid unknown fields, so a misspelt field is a 422 naming it rather than a value
silently dropped. Types are not guessed: ``true`` is not an amount, and a time is ISO 8601
text with a UTC offset, not a number of seconds (a number may come as numeric text, as some
payment APIs send amounts). A card id that looks like a card number
(a Luhn-valid run of 13-19 digits) is refused, and the error does not echo it, so a PAN
never reaches the decision log. Times before 1970 and coordinates beyond
:data:`~fraudops.types.MAX_COORDINATE_KM` are refused here; how far ahead of the service's
clock a time may be is the service's own check (``service.max_future_s``).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
)

from fraudops.ingest.currency import ISO_4217
from fraudops.monitoring.logs import mask_pans
from fraudops.types import (
    MAX_COORDINATE_KM,
    Action,
    Decision,
    Label,
    LabelSource,
    Transaction,
)

MAX_AMOUNT = 1_000_000.0
"""The largest amount a single card transaction may carry, in its currency."""

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
"""The earliest time a transaction or label may carry."""

Identifier = Annotated[
    str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$")
]


def _not_a_card_number(value: str) -> str:
    if mask_pans(value) != value:
        raise ValueError(
            "looks like a card number; send a pseudonymous card id (a token or a keyed"
            " hash), never the PAN"
        )
    return value


def _not_a_bool(value: Any) -> Any:
    # JSON's true and false would otherwise pass as the numbers 1 and 0.
    if isinstance(value, bool):
        raise ValueError("expected a number, not true or false")
    return value


def _time_text(value: Any) -> Any:
    # A bare number would otherwise pass as seconds since 1970.
    if not isinstance(value, str | datetime):
        raise ValueError("expected an ISO 8601 time with a UTC offset, as a string")
    return value


def _not_before_1970(value: datetime) -> datetime:
    if value < EARLIEST:
        raise ValueError("is before 1970")
    return value


CardId = Annotated[Identifier, AfterValidator(_not_a_card_number)]
Time = Annotated[AwareDatetime, BeforeValidator(_time_text), AfterValidator(_not_before_1970)]
Number = Annotated[float, BeforeValidator(_not_a_bool)]
Coordinate = Annotated[
    Number, Field(ge=-MAX_COORDINATE_KM, le=MAX_COORDINATE_KM, allow_inf_nan=False)
]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class TransactionIn(_Input):
    """One card transaction to decide."""

    transaction_id: Identifier
    timestamp: Time = Field(description="When it happened, with a UTC offset.")
    customer_id: CardId = Field(description="The card (pseudonymous id, never a PAN).")
    terminal_id: Identifier
    amount: Number = Field(ge=0.0, le=MAX_AMOUNT, allow_inf_nan=False)
    currency: str = Field(default="EUR", min_length=3, max_length=3)
    channel: str | None = Field(default=None, max_length=32)
    country: str | None = Field(default=None, min_length=2, max_length=2)
    merchant_category: str | None = Field(default=None, max_length=8)
    terminal_x: Coordinate | None = Field(default=None, description="Kilometres.")
    terminal_y: Coordinate | None = Field(default=None, description="Kilometres.")

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
    known_at: Time = Field(description="When the truth became known.")

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
