"""The FeatureState contract, run against every implementation."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fraudops.features.state import (
    CardState,
    FeatureState,
    InMemoryFeatureState,
    TerminalState,
    TxRef,
)

IMPLEMENTATIONS: list[Callable[[], FeatureState]] = [InMemoryFeatureState]


@pytest.fixture(params=IMPLEMENTATIONS, ids=lambda factory: factory.__name__)
def store(request: pytest.FixtureRequest) -> FeatureState:
    """A fresh, empty store of each implementation."""
    factory: Callable[[], FeatureState] = request.param
    return factory()


def test_unknown_entities_have_no_state(store: FeatureState) -> None:
    """A card, terminal or transaction never written reads as None."""
    assert store.get_card("c") is None
    assert store.get_terminal("m") is None
    assert store.get_tx_ref("t") is None


def test_written_records_read_back_equal(store: FeatureState) -> None:
    """What is put is what is got."""
    card = CardState()
    card.insert(0, 10, "t1", 5.0, "m1", 1.0, 2.0)
    terminal = TerminalState()
    terminal.insert(0, 10, "t1")
    store.put_card("c", card)
    store.put_terminal("m", terminal)
    store.put_tx_ref("t1", TxRef("m", 10), expires_at=100)
    expected_ref = TxRef("m", 10)
    assert card == store.get_card("c")
    assert terminal == store.get_terminal("m")
    assert expected_ref == store.get_tx_ref("t1")


def test_references_expire_by_event_time(store: FeatureState) -> None:
    """A reference is gone once a newer one is written past its expiry."""
    store.put_tx_ref("old", TxRef("m", 10), expires_at=100)
    store.put_tx_ref("kept", TxRef("m", 90), expires_at=180)
    store.put_tx_ref("new", TxRef("m", 100), expires_at=190)
    assert store.get_tx_ref("old") is None
    expected = TxRef("m", 90)
    assert expected == store.get_tx_ref("kept")


def test_rewriting_a_reference_extends_it(store: FeatureState) -> None:
    """The latest write of a reference decides when it expires."""
    store.put_tx_ref("t", TxRef("m", 10), expires_at=100)
    store.put_tx_ref("t", TxRef("m", 10), expires_at=300)
    store.put_tx_ref("other", TxRef("m", 150), expires_at=400)
    expected = TxRef("m", 10)
    assert expected == store.get_tx_ref("t")
