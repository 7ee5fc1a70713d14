"""The online engine and its state store: ties, labels, eviction, serialisation."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from fraudops.features import DEFAULT_FEATURES, InMemoryFeatureState, OnlineFeatures
from fraudops.features.online import DAYS_SINCE_CARD_FRAUD
from fraudops.features.state import CardState, TerminalState
from fraudops.types import Label, LabelSource, Transaction

T0 = datetime(2024, 3, 1, 12, tzinfo=UTC)
NAMES = DEFAULT_FEATURES.names


def _tx(
    tx_id: str, at: datetime, card: str = "c1", terminal: str = "m1", amount: float = 10.0
) -> Transaction:
    return Transaction(tx_id, at, card, terminal, amount, terminal_x=1.0, terminal_y=2.0)


def _online() -> OnlineFeatures:
    return OnlineFeatures(DEFAULT_FEATURES, InMemoryFeatureState())


def _feature(values: np.ndarray, name: str) -> float:
    return float(values[NAMES.index(name)])


def test_features_come_in_definition_order_as_float64() -> None:
    """One float64 per feature, the amount first."""
    values = _online().compute_and_update(_tx("a", T0, amount=42.5))
    assert (len(NAMES),) == values.shape
    assert np.float64 == values.dtype
    expected = 42.5
    assert expected == _feature(values, "amount")


def test_first_transaction_has_no_history() -> None:
    """A card's first transaction counts itself and knows nothing else."""
    values = _online().compute_and_update(_tx("a", T0))
    expected = 1.0
    assert expected == _feature(values, "card_tx_count_30d")
    assert math.isnan(_feature(values, "seconds_since_card_prev_tx"))
    assert math.isnan(_feature(values, "amount_to_card_avg_30d"))
    expected = 1.0
    assert expected == _feature(values, "is_new_terminal_for_card")


@pytest.mark.parametrize("order", [("a", "b"), ("b", "a")])
def test_same_time_peers_are_not_each_others_history(order: tuple[str, str]) -> None:
    """Two transactions of one card at one instant get the same features in either order."""
    online = _online()
    online.compute_and_update(_tx("early", T0 - timedelta(hours=2), amount=30.0))
    amounts = {"a": 10.0, "b": 20.0}
    results = {
        tx_id: online.compute_and_update(_tx(tx_id, T0, amount=amounts[tx_id])) for tx_id in order
    }
    for tx_id, values in results.items():
        expected = 2.0
        assert expected == _feature(values, "card_tx_count_1d")
        assert (30.0 + amounts[tx_id]) / 2 == _feature(values, "card_avg_amount_1d")
        expected = 7_200.0
        assert expected == _feature(values, "seconds_since_card_prev_tx")
        expected = 0.0
        assert expected == _feature(values, "is_new_terminal_for_card")


def test_window_evicts_old_transactions() -> None:
    """A transaction 30 days back leaves the 30-day window and the card's state."""
    state = InMemoryFeatureState()
    online = OnlineFeatures(DEFAULT_FEATURES, state)
    online.compute_and_update(_tx("old", T0))
    values = online.compute_and_update(_tx("new", T0 + timedelta(days=30)))
    expected = 1.0
    assert expected == _feature(values, "card_tx_count_30d")
    expected = 30 * 86_400.0
    assert expected == _feature(values, "seconds_since_card_prev_tx")
    card = state.get_card("c1")
    assert card is not None
    expected_ids = ["new"]
    assert expected_ids == card.transaction_ids


def test_state_stays_bounded_over_a_long_stream() -> None:
    """After 200 days of one transaction an hour, state holds the horizon plus the newest."""
    state = InMemoryFeatureState()
    online = OnlineFeatures(DEFAULT_FEATURES, state)
    for hour in range(200 * 24):
        online.compute_and_update(_tx(f"t{hour}", T0 + timedelta(hours=hour)))
    card, terminal = state.get_card("c1"), state.get_terminal("m1")
    assert card is not None
    assert terminal is not None
    expected = 30 * 24
    assert expected == len(card.ts)
    expected = 37 * 24
    assert expected == len(terminal.ts)
    assert state.sizes()["tx_refs"] <= 37 * 24 + 1


def _label(tx_id: str, at: datetime, fraud: bool = True) -> Label:
    return Label(tx_id, fraud, LabelSource.ANALYST, at)


def test_labels_for_unknown_or_premature_transactions_are_ignored() -> None:
    """A label for an unseen transaction, or known before it happened, is counted as ignored."""
    online = _online()
    online.observe_label(_label("nobody", T0))
    online.compute_and_update(_tx("a", T0))
    online.observe_label(_label("a", T0 - timedelta(seconds=1)))
    online.observe_label(_label("a", T0))
    online.observe_label(_label("a", T0 + timedelta(seconds=1)))
    expected = (2, 2)
    assert expected == (online.labels_applied, online.labels_ignored)


def test_terminal_risk_uses_the_latest_known_label() -> None:
    """An overturned fraud label stops counting; at an equal known_at fraud wins."""
    online = _online()
    online.compute_and_update(_tx("a", T0, card="x"))
    probe = T0 + timedelta(days=7, hours=1)
    online.observe_label(_label("a", T0 + timedelta(days=1), fraud=False))
    online.observe_label(_label("a", T0 + timedelta(days=1), fraud=True))
    risky = online.compute_and_update(_tx("b", probe, card="y"))
    online.observe_label(_label("a", T0 + timedelta(days=8), fraud=False))
    cleared = online.compute_and_update(_tx("c", probe + timedelta(days=1), card="z"))
    expected = 1.0
    assert expected == _feature(risky, "terminal_risk_1d")
    expected = 0.0
    assert expected == _feature(cleared, "terminal_risk_7d")
    expected = 1.0
    assert expected == _feature(cleared, "terminal_tx_count_7d")


def _days_since_card_fraud(online: OnlineFeatures, tx: Transaction) -> float:
    return online.serve(tx).signals[DAYS_SINCE_CARD_FRAUD]


def test_a_confirmed_fraud_marks_its_card_from_when_it_was_known() -> None:
    """A fraud verdict reaches the card: its next payments see how many days ago it was known."""
    online = _online()
    online.compute_and_update(_tx("stolen", T0, card="c1", terminal="m1"))
    online.observe_label(_label("stolen", T0 + timedelta(hours=2)))
    before = _days_since_card_fraud(online, _tx("early", T0 + timedelta(hours=1), card="c1"))
    after = _days_since_card_fraud(online, _tx("next", T0 + timedelta(days=3, hours=2), card="c1"))
    other = _days_since_card_fraud(online, _tx("elsewhere", T0 + timedelta(days=3), card="c2"))
    expected = (math.inf, 3.0, math.inf)
    assert expected == (before, after, other)


def test_a_newer_genuine_verdict_on_the_same_transaction_clears_the_card() -> None:
    """Overruling the card's fraud clears it; a genuine label on another payment does not."""
    online = _online()
    online.compute_and_update(_tx("a", T0, card="c1"))
    online.compute_and_update(_tx("b", T0 + timedelta(minutes=1), card="c1"))
    online.observe_label(_label("a", T0 + timedelta(hours=1)))
    online.observe_label(_label("b", T0 + timedelta(hours=2), fraud=False))
    still = _days_since_card_fraud(online, _tx("c", T0 + timedelta(days=1, hours=1), card="c1"))
    online.observe_label(_label("a", T0 + timedelta(days=2), fraud=False))
    cleared = _days_since_card_fraud(online, _tx("d", T0 + timedelta(days=3), card="c1"))
    expected = (1.0, math.inf)
    assert expected == (still, cleared)


def test_a_card_keeps_its_latest_confirmed_fraud_and_ignores_premature_ones() -> None:
    """An older confirmation never replaces a newer one; one known before its payment is void."""
    online = _online()
    online.compute_and_update(_tx("a", T0, card="c1"))
    online.compute_and_update(_tx("b", T0 + timedelta(hours=1), card="c1"))
    online.observe_label(_label("b", T0 + timedelta(days=2)))
    online.observe_label(_label("a", T0 + timedelta(days=1)))
    online.compute_and_update(_tx("c", T0 + timedelta(days=3), card="c2"))
    online.observe_label(_label("c", T0 + timedelta(days=2)))
    card = online.state.get_card("c1")
    assert card is not None
    expected = ("b", 2.0)
    assert expected == (
        card.fraud_transaction_id,
        _days_since_card_fraud(online, _tx("d", T0 + timedelta(days=4), card="c1")),
    )
    assert math.isinf(_days_since_card_fraud(online, _tx("e", T0 + timedelta(days=4), card="c2")))


def test_card_state_round_trips_through_json() -> None:
    """A card record survives encode → JSON → decode unchanged."""
    card = CardState()
    card.insert(0, 5, "a", 1.5, "m1", 3.0, 4.0)
    card.insert(1, 9, "b", 2.5, "m2", math.nan, math.nan)
    card.evict(0)
    card.fraud_known_at, card.fraud_transaction_id = 11, "b"
    decoded = CardState.decode(json.loads(json.dumps(card.encode())))
    assert card == decoded


def test_a_card_record_from_before_confirmed_frauds_decodes_unmarked() -> None:
    """A record stored without the confirmed-fraud keys (an older release) reads as unmarked."""
    card = CardState()
    card.insert(0, 5, "a", 1.5, "m1", 3.0, 4.0)
    stored = card.encode()
    del stored["fraud_known_at"], stored["fraud_transaction_id"]
    assert card == CardState.decode(stored)


def test_terminal_state_round_trips_through_json() -> None:
    """A terminal record survives encode → JSON → decode unchanged."""
    terminal = TerminalState()
    terminal.insert(0, 5, "a")
    terminal.label_known_at[0], terminal.is_fraud[0] = 7, True
    decoded = TerminalState.decode(json.loads(json.dumps(terminal.encode())))
    assert terminal == decoded


def test_a_terminals_first_known_fraud_dates_its_compromise() -> None:
    """The age of the terminal's earliest known fraud in its delayed window, in seconds."""
    online = _online()
    online.compute_and_update(_tx("genuine", T0 - timedelta(days=20), card="c1"))
    online.compute_and_update(_tx("first", T0 - timedelta(days=12), card="c2"))
    online.compute_and_update(_tx("later", T0 - timedelta(days=9), card="c3"))
    for tx_id in ("first", "later"):
        online.observe_label(Label(tx_id, True, LabelSource.ANALYST, T0 - timedelta(days=8)))
    values = online.compute_and_update(_tx("now", T0, card="c4"))
    expected = timedelta(days=12).total_seconds()
    assert expected == _feature(values, "seconds_since_terminal_first_fraud_30d")
    cleared = online.compute_and_update(_tx("quiet", T0 + timedelta(days=40), card="c5"))
    assert math.isnan(_feature(cleared, "seconds_since_terminal_first_fraud_30d"))


def test_a_past_spike_shows_in_the_cards_peak_to_mean() -> None:
    """A ×5 payment three days ago puts the card's week peak at 5 / mean of its month."""
    online = _online()
    history = [10.0, 10.0, 10.0, 50.0]
    for i, amount in enumerate(history):
        online.compute_and_update(_tx(f"h{i}", T0 - timedelta(days=6 - i), amount=amount))
    values = online.compute_and_update(_tx("now", T0, amount=10.0))
    expected = 50.0 / (sum(history) / len(history))
    assert math.isclose(expected, _feature(values, "card_peak_7d_to_avg_30d"), rel_tol=1e-12)


@pytest.mark.parametrize("amount", [1.0, 10.0, 10_000.0])
def test_peak_to_mean_ignores_the_current_amount(amount: float) -> None:
    """History only: a payment's own amount never moves it (so it needs no monotone bound)."""
    online = _online()
    for i, past in enumerate([12.0, 8.0, 30.0]):
        online.compute_and_update(_tx(f"h{i}", T0 - timedelta(days=3 - i), amount=past))
    values = online.compute_and_update(_tx("now", T0, amount=amount))
    expected = 30.0 / ((12.0 + 8.0 + 30.0) / 3)
    assert math.isclose(expected, _feature(values, "card_peak_7d_to_avg_30d"), rel_tol=1e-12)


def test_a_transaction_the_state_holds_is_served_as_it_first_was_and_counted_once() -> None:
    """A replay gets the features of its first pass, flagged, and no window counts it twice;
    the label its terminal got since stays with it."""
    online = _online()
    online.compute_and_update(_tx("a", T0, amount=10.0))
    first = online.serve(_tx("b", T0 + timedelta(hours=1), amount=50.0))
    online.compute_and_update(_tx("c", T0 + timedelta(hours=2), amount=20.0))
    online.observe_label(_label("b", T0 + timedelta(hours=3)))
    again = online.serve(_tx("b", T0 + timedelta(hours=1), amount=50.0))
    card = online.state.get_card("c1")
    terminal = online.state.get_terminal("m1")
    assert card is not None
    assert terminal is not None
    assert (False, True) == (first.seen_before, again.seen_before)
    np.testing.assert_array_equal(first.values, again.values)
    assert ["a", "b", "c"] == card.transaction_ids
    assert ["a", "b", "c"] == terminal.transaction_ids
    assert terminal.is_fraud[1]


def test_another_payment_under_a_seen_id_is_not_served_and_changes_nothing() -> None:
    """The id's reference (another time or terminal) or its card entry (another amount)
    shows a different payment: NaN features, the differing fields named, the state as it was."""
    online = _online()
    online.compute_and_update(_tx("a", T0, amount=10.0))
    before = online.state.get_card("c1")
    assert before is not None
    held = list(before.transaction_ids), list(before.amounts)
    later = online.serve(_tx("a", T0 + timedelta(minutes=5), terminal="m2"))
    dearer = online.serve(_tx("a", T0, amount=99.0))
    card = online.state.get_card("c1")
    assert card is not None
    assert (("timestamp", "terminal_id"), ("amount",)) == (later.conflict, dearer.conflict)
    assert np.isnan(later.values).all()
    assert held == (card.transaction_ids, card.amounts)
    assert online.state.get_terminal("m2") is None
