"""The domain records that travel between stages: transactions, labels and decisions.

They are plain frozen dataclasses: cheap to build on the hot path, validated at the
edges (ingestion, the API) rather than on every construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

MAX_COORDINATE_KM = 1_000_000.0
"""The largest terminal coordinate, either sign, that ingestion and the API accept: far
beyond any place on Earth, and small enough that a distance between two never overflows."""


class Action(StrEnum):
    """What the decision path tells the payment flow to do."""

    APPROVE = "approve"
    REVIEW = "review"
    DECLINE = "decline"


class LabelSource(StrEnum):
    """Where a fraud label came from; each source arrives with its own delay."""

    DATASET = "dataset"
    ANALYST = "analyst"
    CHARGEBACK = "chargeback"


@dataclass(frozen=True, slots=True)
class Transaction:
    """One card transaction as the system sees it after ingestion.

    ``timestamp`` is always timezone-aware UTC. ``terminal_x``/``terminal_y`` are planar
    coordinates of the terminal in kilometres, present when the source knows them.
    """

    transaction_id: str
    timestamp: datetime
    customer_id: str
    terminal_id: str
    amount: float
    currency: str = "EUR"
    channel: str | None = None
    country: str | None = None
    merchant_category: str | None = None
    terminal_x: float | None = None
    terminal_y: float | None = None


@dataclass(frozen=True, slots=True)
class Label:
    """The truth about one transaction, and when the system learnt it.

    ``known_at`` is what keeps training honest: a feature computed at time t may only use
    labels whose ``known_at`` is at or before t.
    """

    transaction_id: str
    is_fraud: bool
    source: LabelSource
    known_at: datetime


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason behind a decision: a feature or rule and how much it pushed the score."""

    code: str
    contribution: float


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer for one transaction: what to do, how sure, and why.

    ``source`` names what decided: ``model`` (the champion), or a fallback step
    (``last_good``, ``rules``, ``static``). ``degraded`` is true whenever something other
    than the champion decided; ``degraded_reason`` then says why, as ``step:reason`` pairs
    of the steps that failed (``champion:timeout``).
    """

    transaction_id: str
    action: Action
    score: float
    reasons: tuple[Reason, ...]
    model_version: str
    latency_ms: float
    degraded: bool = False
    degraded_reason: str | None = None
    rule_hits: tuple[str, ...] = field(default_factory=tuple)
    source: str = "model"
