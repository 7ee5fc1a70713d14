"""The one declarative feature definition both engines compute.

A feature is a frozen record: which entity it describes, which slice of that entity's
past it looks at (its kind, window and delay) and how it aggregates the slice. The offline
engine generates its SQL from these records and the online engine dispatches on them, so
a feature cannot exist in one engine only. Every (kind, entity, aggregate) combination a
definition may use is listed in ``SUPPORTED``; both engines handle exactly that set.

Slices, for a transaction at time ``t`` (microsecond UTC timestamps):

- ``POINT``: the transaction alone.
- ``WINDOW``: the entity's history in ``(t − w, t)`` plus the transaction itself.
- ``HISTORY``: the entity's history in ``(t − w, t)``, the transaction excluded
  (``window=None``: all history).
- ``DELAYED``: the terminal's transactions in ``(t − d − w, t − d]`` (``ts < t`` or the
  transaction itself), with the labels known by ``t``; ``d`` is the label delay.

A ``PEAK_TO_MEAN`` feature compares two history slices: the largest amount in ``(t − w, t)``
over the mean amount in ``(t − b, t)``, ``b`` its ``baseline`` window.

"History" means the entity's other transactions with ``ts < t`` strictly: transactions
sharing ``t`` are never in each other's history, so no feature depends on arrival order.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

DEFINITION_VERSION = 1
"""Bumped when the meaning of an existing (kind, entity, aggregate) changes."""


class Entity(StrEnum):
    """What a feature describes: the transaction itself, its card or its terminal."""

    TRANSACTION = "transaction"
    CARD = "card"
    TERMINAL = "terminal"


class Kind(StrEnum):
    """Which slice of the entity's past a feature looks at."""

    POINT = "point"
    WINDOW = "window"
    HISTORY = "history"
    DELAYED = "delayed"


class Aggregate(StrEnum):
    """How a feature turns its slice into one number."""

    AMOUNT = "amount"
    IS_WEEKEND = "is_weekend"
    IS_NIGHT = "is_night"
    COUNT = "count"
    MEAN_AMOUNT = "mean_amount"
    FRAUD_RATE = "fraud_rate"
    AMOUNT_TO_MEAN = "amount_to_mean"
    AMOUNT_ZSCORE = "amount_zscore"
    SECONDS_SINCE_LAST = "seconds_since_last"
    IS_NEW_TERMINAL = "is_new_terminal"
    DISTANCE_TO_MEAN_LOCATION = "distance_to_mean_location"
    PEAK_TO_MEAN = "peak_to_mean"
    SECONDS_SINCE_FIRST_FRAUD = "seconds_since_first_fraud"


SUPPORTED: frozenset[tuple[Kind, Entity, Aggregate]] = frozenset(
    [
        (Kind.POINT, Entity.TRANSACTION, Aggregate.AMOUNT),
        (Kind.POINT, Entity.TRANSACTION, Aggregate.IS_WEEKEND),
        (Kind.POINT, Entity.TRANSACTION, Aggregate.IS_NIGHT),
        (Kind.WINDOW, Entity.CARD, Aggregate.COUNT),
        (Kind.WINDOW, Entity.CARD, Aggregate.MEAN_AMOUNT),
        (Kind.WINDOW, Entity.TERMINAL, Aggregate.COUNT),
        (Kind.DELAYED, Entity.TERMINAL, Aggregate.COUNT),
        (Kind.DELAYED, Entity.TERMINAL, Aggregate.FRAUD_RATE),
        (Kind.HISTORY, Entity.CARD, Aggregate.AMOUNT_TO_MEAN),
        (Kind.HISTORY, Entity.CARD, Aggregate.AMOUNT_ZSCORE),
        (Kind.HISTORY, Entity.CARD, Aggregate.SECONDS_SINCE_LAST),
        (Kind.HISTORY, Entity.CARD, Aggregate.IS_NEW_TERMINAL),
        (Kind.HISTORY, Entity.CARD, Aggregate.DISTANCE_TO_MEAN_LOCATION),
        (Kind.HISTORY, Entity.CARD, Aggregate.PEAK_TO_MEAN),
        (Kind.DELAYED, Entity.TERMINAL, Aggregate.SECONDS_SINCE_FIRST_FRAUD),
    ]
)
"""The (kind, entity, aggregate) combinations both engines compute."""

_UNBOUNDED_OK = frozenset([Aggregate.SECONDS_SINCE_LAST])
_WITH_BASELINE = frozenset([Aggregate.PEAK_TO_MEAN])
_MICROSECOND = timedelta(microseconds=1)


def to_micros(span: timedelta) -> int:
    """A timedelta as whole microseconds (the resolution of every timestamp)."""
    return span // _MICROSECOND


@dataclass(frozen=True, slots=True)
class Feature:
    """One model input: a named aggregate over one slice of one entity's past."""

    name: str
    kind: Kind
    entity: Entity
    aggregate: Aggregate
    window: timedelta | None = None
    delay: timedelta = timedelta(0)
    baseline: timedelta | None = None

    def __post_init__(self) -> None:
        if (self.kind, self.entity, self.aggregate) not in SUPPORTED:
            raise ValueError(
                f"feature {self.name!r}: ({self.kind}, {self.entity}, {self.aggregate}) "
                "is not computed by the engines"
            )
        if self.kind is Kind.POINT:
            if self.window is not None or self.delay:
                raise ValueError(f"feature {self.name!r}: a point feature has no window")
        elif self.window is None:
            if self.aggregate not in _UNBOUNDED_OK:
                raise ValueError(f"feature {self.name!r} needs a window")
        elif self.window <= timedelta(0) or self.window % _MICROSECOND:
            raise ValueError(f"feature {self.name!r}: window must be whole positive µs")
        if self.kind is not Kind.DELAYED and self.delay:
            raise ValueError(f"feature {self.name!r}: only delayed features have a delay")
        if self.delay < timedelta(0) or self.delay % _MICROSECOND:
            raise ValueError(f"feature {self.name!r}: delay must be whole non-negative µs")
        if (self.baseline is None) == (self.aggregate in _WITH_BASELINE):
            raise ValueError(
                f"feature {self.name!r}: a baseline window is required by "
                f"{sorted(_WITH_BASELINE)} and allowed nowhere else"
            )
        if self.baseline is not None and (
            self.baseline <= timedelta(0) or self.baseline % _MICROSECOND
        ):
            raise ValueError(f"feature {self.name!r}: baseline must be whole positive µs")

    @property
    def window_us(self) -> int | None:
        """The window in microseconds, None when unbounded."""
        return None if self.window is None else to_micros(self.window)

    @property
    def delay_us(self) -> int:
        """The delay in microseconds."""
        return to_micros(self.delay)

    @property
    def baseline_us(self) -> int | None:
        """The baseline window in microseconds, None when the aggregate has none."""
        return None if self.baseline is None else to_micros(self.baseline)

    @property
    def reach_us(self) -> int | None:
        """How far back (µs) the feature looks; None when unbounded."""
        if self.window_us is None:
            return None
        return self.delay_us + max(self.window_us, self.baseline_us or 0)

    def canonical(self) -> dict[str, object]:
        """A JSON-ready description, stable across runs (for the definition hash)."""
        document: dict[str, object] = {
            "name": self.name,
            "kind": self.kind.value,
            "entity": self.entity.value,
            "aggregate": self.aggregate.value,
            "window_us": self.window_us,
            "delay_us": self.delay_us,
        }
        # Only when set, so the hash of a feature without one is what it always was.
        if self.baseline is not None:
            document["baseline_us"] = self.baseline_us
        return document


@dataclass(frozen=True, slots=True)
class FeatureDefinition:
    """The ordered set of features a model is trained and served on."""

    features: tuple[Feature, ...]
    label_delay_days: int

    def __post_init__(self) -> None:
        names = [feature.name for feature in self.features]
        if len(set(names)) != len(names):
            raise ValueError("feature names must be unique")
        delay = timedelta(days=self.label_delay_days)
        for feature in self.features:
            if feature.kind is Kind.DELAYED and feature.delay != delay:
                raise ValueError(
                    f"feature {feature.name!r}: delayed features use the label delay "
                    f"({self.label_delay_days} days)"
                )

    @property
    def names(self) -> tuple[str, ...]:
        """Feature names in the model's input order."""
        return tuple(feature.name for feature in self.features)

    @property
    def label_delay(self) -> timedelta:
        """How long after a transaction its label is assumed known."""
        return timedelta(days=self.label_delay_days)

    def horizon_us(self, entity: Entity) -> int:
        """How far back (µs) the entity's windowed features look; 0 when none do."""
        spans = [feature.reach_us for feature in self.features if feature.entity is entity]
        return max((span for span in spans if span is not None), default=0)

    def canonical_json(self) -> str:
        """The definition as canonical JSON: the input of ``definition_hash``."""
        document = {
            "version": DEFINITION_VERSION,
            "label_delay_days": self.label_delay_days,
            "features": [feature.canonical() for feature in self.features],
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":"))

    def definition_hash(self) -> str:
        """sha256 of the canonical JSON: a model records it, serving checks it."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()


_CARD_WINDOWS = (("1d", timedelta(days=1)), ("7d", timedelta(days=7)), ("30d", timedelta(days=30)))


def feature_definition(label_delay_days: int = 7) -> FeatureDefinition:
    """The default feature set (the handbook's 15 inputs plus behavioural extras)."""
    delay = timedelta(days=label_delay_days)
    week = timedelta(days=7)
    month = timedelta(days=30)
    hour = timedelta(hours=1)
    features: list[Feature] = [
        Feature("amount", Kind.POINT, Entity.TRANSACTION, Aggregate.AMOUNT),
        Feature("is_weekend", Kind.POINT, Entity.TRANSACTION, Aggregate.IS_WEEKEND),
        Feature("is_night", Kind.POINT, Entity.TRANSACTION, Aggregate.IS_NIGHT),
    ]
    for label, window in _CARD_WINDOWS:
        features += [
            Feature(f"card_tx_count_{label}", Kind.WINDOW, Entity.CARD, Aggregate.COUNT, window),
            Feature(
                f"card_avg_amount_{label}",
                Kind.WINDOW,
                Entity.CARD,
                Aggregate.MEAN_AMOUNT,
                window,
            ),
        ]
    for label, window in _CARD_WINDOWS:
        features += [
            Feature(
                f"terminal_tx_count_{label}",
                Kind.DELAYED,
                Entity.TERMINAL,
                Aggregate.COUNT,
                window,
                delay,
            ),
            Feature(
                f"terminal_risk_{label}",
                Kind.DELAYED,
                Entity.TERMINAL,
                Aggregate.FRAUD_RATE,
                window,
                delay,
            ),
        ]
    features += [
        Feature("card_tx_count_1h", Kind.WINDOW, Entity.CARD, Aggregate.COUNT, hour),
        Feature("terminal_tx_count_1h", Kind.WINDOW, Entity.TERMINAL, Aggregate.COUNT, hour),
        Feature(
            "amount_to_card_avg_30d", Kind.HISTORY, Entity.CARD, Aggregate.AMOUNT_TO_MEAN, month
        ),
        Feature("amount_zscore_30d", Kind.HISTORY, Entity.CARD, Aggregate.AMOUNT_ZSCORE, month),
        Feature(
            "seconds_since_card_prev_tx",
            Kind.HISTORY,
            Entity.CARD,
            Aggregate.SECONDS_SINCE_LAST,
        ),
        Feature(
            "is_new_terminal_for_card",
            Kind.HISTORY,
            Entity.CARD,
            Aggregate.IS_NEW_TERMINAL,
            month,
        ),
        Feature(
            "distance_from_card_terminals_30d",
            Kind.HISTORY,
            Entity.CARD,
            Aggregate.DISTANCE_TO_MEAN_LOCATION,
            month,
        ),
        # A leaked card's earlier ×5 payments: how far above its month's mean its week peaked.
        Feature(
            "card_peak_7d_to_avg_30d",
            Kind.HISTORY,
            Entity.CARD,
            Aggregate.PEAK_TO_MEAN,
            week,
            baseline=month,
        ),
        # A compromised terminal stays so for weeks: how long ago its known frauds began.
        Feature(
            "seconds_since_terminal_first_fraud_30d",
            Kind.DELAYED,
            Entity.TERMINAL,
            Aggregate.SECONDS_SINCE_FIRST_FRAUD,
            month,
            delay,
        ),
    ]
    return FeatureDefinition(tuple(features), label_delay_days)


DEFAULT_FEATURES = feature_definition()
"""The default definition: label delay 7 days, 24 features."""
