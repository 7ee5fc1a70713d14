"""The declarative feature definition: its order, its validation and its hash."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from fraudops.features.definition import (
    DEFAULT_FEATURES,
    Aggregate,
    Entity,
    Feature,
    FeatureDefinition,
    Kind,
    feature_definition,
)

HANDBOOK_INPUTS = (
    "amount",
    "is_weekend",
    "is_night",
    "card_tx_count_1d",
    "card_avg_amount_1d",
    "card_tx_count_7d",
    "card_avg_amount_7d",
    "card_tx_count_30d",
    "card_avg_amount_30d",
    "terminal_tx_count_1d",
    "terminal_risk_1d",
    "terminal_tx_count_7d",
    "terminal_risk_7d",
    "terminal_tx_count_30d",
    "terminal_risk_30d",
)


def _with_window(definition: FeatureDefinition, name: str, window: timedelta) -> FeatureDefinition:
    features = tuple(
        dataclasses.replace(f, window=window) if f.name == name else f for f in definition.features
    )
    return FeatureDefinition(features, definition.label_delay_days)


def test_names_start_with_the_handbook_inputs_in_order() -> None:
    """The model's first 15 inputs are the handbook's, in the handbook's order."""
    expected = HANDBOOK_INPUTS
    assert expected == DEFAULT_FEATURES.names[: len(HANDBOOK_INPUTS)]


def test_names_are_unique_and_follow_the_features() -> None:
    """``names`` lists every feature once, in definition order."""
    expected = tuple(f.name for f in DEFAULT_FEATURES.features)
    assert expected == DEFAULT_FEATURES.names
    assert len(set(DEFAULT_FEATURES.names)) == len(DEFAULT_FEATURES.names)


def test_hash_is_stable_for_an_equal_definition() -> None:
    """Two separately built equal definitions hash the same."""
    assert feature_definition(7).definition_hash() == DEFAULT_FEATURES.definition_hash()


def test_hash_changes_with_the_label_delay() -> None:
    """A different label delay is a different definition."""
    assert feature_definition(8).definition_hash() != DEFAULT_FEATURES.definition_hash()


def test_hash_changes_with_a_window() -> None:
    """Changing one feature's window changes the hash."""
    changed = _with_window(DEFAULT_FEATURES, "card_tx_count_7d", timedelta(days=6))
    assert changed.definition_hash() != DEFAULT_FEATURES.definition_hash()


def test_hash_changes_with_feature_order() -> None:
    """The input order is part of the definition."""
    swapped = FeatureDefinition(
        (
            DEFAULT_FEATURES.features[1],
            DEFAULT_FEATURES.features[0],
            *DEFAULT_FEATURES.features[2:],
        ),
        DEFAULT_FEATURES.label_delay_days,
    )
    assert swapped.definition_hash() != DEFAULT_FEATURES.definition_hash()


def test_delayed_features_use_the_label_delay() -> None:
    """Every delayed feature of a definition is delayed by its label delay."""
    definition = feature_definition(3)
    delays = {f.delay for f in definition.features if f.kind is Kind.DELAYED}
    assert {timedelta(days=3)} == delays


def test_a_delayed_feature_with_another_delay_is_rejected() -> None:
    """A delayed feature that disagrees with the label delay cannot be defined."""
    feature = Feature(
        "t", Kind.DELAYED, Entity.TERMINAL, Aggregate.COUNT, timedelta(days=1), timedelta(days=2)
    )
    with pytest.raises(ValueError, match="label delay"):
        FeatureDefinition((feature,), 7)


def test_an_unsupported_combination_is_rejected() -> None:
    """A feature neither engine computes cannot be defined."""
    with pytest.raises(ValueError, match="not computed"):
        Feature("x", Kind.WINDOW, Entity.TERMINAL, Aggregate.MEAN_AMOUNT, timedelta(days=1))


def test_a_windowed_feature_needs_a_window() -> None:
    """Only 'time since last' may look at unbounded history."""
    with pytest.raises(ValueError, match="needs a window"):
        Feature("x", Kind.WINDOW, Entity.CARD, Aggregate.COUNT)


def test_duplicate_names_are_rejected() -> None:
    """Two features cannot share a name."""
    amount = DEFAULT_FEATURES.features[0]
    with pytest.raises(ValueError, match="unique"):
        FeatureDefinition((amount, amount), 7)


def test_horizons_cover_the_longest_windows() -> None:
    """Cards look back 30 days; terminals 30 days plus the label delay."""
    day = 86_400_000_000
    assert 30 * day == DEFAULT_FEATURES.horizon_us(Entity.CARD)
    assert 37 * day == DEFAULT_FEATURES.horizon_us(Entity.TERMINAL)


def test_peak_to_mean_needs_a_baseline() -> None:
    """A peak-to-mean feature without its baseline window cannot be defined."""
    with pytest.raises(ValueError, match="baseline"):
        Feature("x", Kind.HISTORY, Entity.CARD, Aggregate.PEAK_TO_MEAN, timedelta(days=7))


def test_only_peak_to_mean_takes_a_baseline() -> None:
    """A baseline window on any other aggregate is rejected, not silently ignored."""
    with pytest.raises(ValueError, match="baseline"):
        Feature(
            "x",
            Kind.HISTORY,
            Entity.CARD,
            Aggregate.AMOUNT_TO_MEAN,
            timedelta(days=7),
            baseline=timedelta(days=30),
        )


def test_a_feature_without_baseline_hashes_as_before() -> None:
    """The baseline enters the canonical form only where set, so older hashes still hold."""
    plain = DEFAULT_FEATURES.features[0].canonical()
    peak = next(f for f in DEFAULT_FEATURES.features if f.baseline is not None).canonical()
    assert "baseline_us" not in plain
    expected = 30 * 86_400_000_000
    assert expected == peak["baseline_us"]


def test_the_baseline_counts_towards_the_horizon() -> None:
    """A peak over one day against a 40-day baseline keeps 40 days of card history."""
    peak = Feature(
        "p",
        Kind.HISTORY,
        Entity.CARD,
        Aggregate.PEAK_TO_MEAN,
        timedelta(days=1),
        baseline=timedelta(days=40),
    )
    expected = 40 * 86_400_000_000
    assert expected == FeatureDefinition((peak,), 7).horizon_us(Entity.CARD)
