"""The extra scenarios: off by default, leave handbook data alone, and have their shape."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from fraudops.simulate import simulate
from fraudops.simulate._extra_frauds import FAR_FROM_HOME, NIGHT_END_SECONDS
from fraudops.simulate._simulator import build_world
from tests.unit.simulate.conftest import SMALL, SMALL_WITH_EXTRAS

CARD_TESTING, ACCOUNT_TAKEOVER = 4, 5


def _without_ids(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns="TRANSACTION_ID").reset_index(drop=True)


def test_extra_scenarios_are_off_by_default(small: pd.DataFrame) -> None:
    """Without --scenario only handbook labels 0–3 appear."""
    assert small["TX_FRAUD_SCENARIO"].max() <= 3


def test_extra_scenarios_appear_when_enabled(small_with_extras: pd.DataFrame) -> None:
    """Enabling both adds fraud transactions labelled 4 and 5."""
    labels = set(small_with_extras["TX_FRAUD_SCENARIO"].unique().tolist())
    assert {CARD_TESTING, ACCOUNT_TAKEOVER} <= labels
    extra = small_with_extras[small_with_extras["TX_FRAUD_SCENARIO"] >= CARD_TESTING]
    assert (extra["TX_FRAUD"] == 1).all()


def test_extras_leave_handbook_transactions_unchanged(
    small: pd.DataFrame, small_with_extras: pd.DataFrame
) -> None:
    """Dropping the extra rows gives back the handbook-only data, ids aside."""
    handbook_rows = small_with_extras[small_with_extras["TX_FRAUD_SCENARIO"] <= 3]
    pd.testing.assert_frame_equal(_without_ids(small), _without_ids(handbook_rows))


def test_extras_are_independent_of_each_other(small_with_extras: pd.DataFrame) -> None:
    """Card-testing rows are the same whether or not account takeover is also on."""
    alone = simulate(dataclasses.replace(SMALL, scenarios=frozenset({"card_testing"}))).to_pandas()
    pick = "TX_FRAUD_SCENARIO == @CARD_TESTING"
    pd.testing.assert_frame_equal(
        _without_ids(alone.query(pick)), _without_ids(small_with_extras.query(pick))
    )


def test_ids_stay_ranks_with_extras(small_with_extras: pd.DataFrame) -> None:
    """Appended transactions are merged in time order and ids re-ranked."""
    assert list(range(len(small_with_extras))) == small_with_extras["TRANSACTION_ID"].tolist()
    assert small_with_extras["TX_TIME_SECONDS"].is_monotonic_increasing


def test_card_testing_is_tiny_amounts_then_a_large_one(small_with_extras: pd.DataFrame) -> None:
    """Each burst: ≥3 tiny amounts at distinct terminals, then one large amount, within minutes."""
    bursts = small_with_extras[small_with_extras["TX_FRAUD_SCENARIO"] == CARD_TESTING]
    groups = list(bursts.groupby(["CUSTOMER_ID", "TX_TIME_DAYS"]))
    assert len(groups) >= 3
    for _, burst in groups:
        amounts = burst["TX_AMOUNT"].to_numpy()
        assert len(amounts) >= 4
        assert ((amounts[:-1] >= 0.5) & (amounts[:-1] <= 2.0)).all()
        assert amounts[-1] >= 150
        assert burst["TERMINAL_ID"].is_unique
        assert np.ptp(burst["TX_TIME_SECONDS"].to_numpy()) <= 20 * 60


def test_account_takeover_is_far_from_home_at_night(small_with_extras: pd.DataFrame) -> None:
    """Takeovers happen 00:00–05:00, over 30 units from home, at terminals the card never used."""
    world = build_world(SMALL_WITH_EXTRAS)
    takeover = small_with_extras[small_with_extras["TX_FRAUD_SCENARIO"] == ACCOUNT_TAKEOVER]
    assert len(takeover) >= 5
    assert (takeover["TX_TIME_SECONDS"] % 86400 < NIGHT_END_SECONDS).all()
    customer = takeover["CUSTOMER_ID"].to_numpy()
    distance = np.hypot(
        takeover["TERMINAL_X"].to_numpy() - world.customers.x[customer],
        takeover["TERMINAL_Y"].to_numpy() - world.customers.y[customer],
    )
    assert (distance > FAR_FROM_HOME).all()
    usual = small_with_extras[small_with_extras["TX_FRAUD_SCENARIO"] <= 3]
    used = set(zip(usual["CUSTOMER_ID"], usual["TERMINAL_ID"], strict=True))
    assert set() == used & set(zip(takeover["CUSTOMER_ID"], takeover["TERMINAL_ID"], strict=True))


def test_account_takeover_spends_one_to_three_times_the_usual(
    small_with_extras: pd.DataFrame,
) -> None:
    """Takeover amounts are 1–3× the card's mean amount."""
    world = build_world(SMALL_WITH_EXTRAS)
    takeover = small_with_extras[small_with_extras["TX_FRAUD_SCENARIO"] == ACCOUNT_TAKEOVER]
    ratio = takeover["TX_AMOUNT"] / world.customers.mean_amount[takeover["CUSTOMER_ID"].to_numpy()]
    assert ((ratio > 0.99) & (ratio < 3.01)).all()
