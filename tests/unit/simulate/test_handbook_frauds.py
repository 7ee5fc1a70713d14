"""The handbook's fraud scenarios 1–3: exact rules on hand-made data, shape on simulated data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fraudops.simulate._handbook_frauds import (
    add_handbook_frauds,
    compromised_cards,
    compromised_terminals,
    draw_daily,
    large_amounts,
)
from fraudops.simulate._simulator import build_world
from fraudops.simulate._transactions import SECONDS_PER_DAY, Transactions
from tests.unit.simulate.conftest import SMALL


def _one_a_day(n_days: int, customer: int = 0, terminal: int = 0) -> Transactions:
    """One noon transaction of 10.00 per day for one customer at one terminal."""
    return Transactions(
        customer=np.full(n_days, customer, np.int64),
        terminal=np.full(n_days, terminal, np.int64),
        seconds=np.arange(n_days, dtype=np.int64) * SECONDS_PER_DAY + 43200,
        amount=np.full(n_days, 10.0),
        scenario=np.zeros(n_days, np.int8),
    )


def test_only_amounts_above_220_are_scenario_1() -> None:
    """220.00 stays genuine; 220.01 is fraud."""
    tx = _one_a_day(3)
    tx = Transactions(
        tx.customer, tx.terminal, tx.seconds, np.array([219.99, 220.0, 220.01]), tx.scenario
    )
    expected = [0, 0, 1]
    assert expected == large_amounts(tx).scenario.tolist()


def test_compromised_terminal_window_is_28_days() -> None:
    """A terminal drawn on day 2 takes only fraud on days 2 … 29, genuine before and after."""
    tx = _one_a_day(40, terminal=5)
    schedule = np.array([[0], [1], [5]], dtype=np.int64)
    labels = compromised_terminals(tx, schedule).scenario
    expected = [2 if 2 <= day < 30 else 0 for day in range(40)]
    assert expected == labels.tolist()


def test_compromised_card_picks_a_third_of_its_window_and_scales_by_five() -> None:
    """Of 14 in-window transactions int(14/3)=4 become fraud at 5× the amount; none outside."""
    tx = _one_a_day(30)
    result = compromised_cards(tx, np.array([[0]], dtype=np.int64), np.random.default_rng(0))
    fraud = np.flatnonzero(result.scenario == 3)
    expected_fraud, expected_genuine = [50.0] * 4, [10.0] * 26
    assert (fraud < 14).all()
    assert expected_fraud == result.amount[fraud].tolist()
    assert expected_genuine == np.delete(result.amount, fraud).tolist()


def test_compromised_card_pools_the_drawn_customers() -> None:
    """int(n/3) is taken over the pooled window of all customers drawn that day."""
    tx = Transactions(
        customer=np.array([0, 1, 2, 0, 1], np.int64),
        terminal=np.zeros(5, np.int64),
        seconds=np.arange(5, dtype=np.int64) * 60,
        amount=np.full(5, 10.0),
        scenario=np.zeros(5, np.int8),
    )
    result = compromised_cards(tx, np.array([[0, 1]], dtype=np.int64), np.random.default_rng(0))
    expected = [1, 0]
    assert expected == [int((result.scenario == 3).sum()), int(result.scenario[2])]


def test_card_fraud_overwrites_terminal_fraud() -> None:
    """A transaction picked by scenario 3 on a compromised terminal ends up labelled 3."""
    tx = compromised_terminals(_one_a_day(14), np.array([[0]], dtype=np.int64))
    result = compromised_cards(tx, np.array([[0]], dtype=np.int64), np.random.default_rng(0))
    expected = {2: 10, 3: 4}
    assert expected == dict(zip(*np.unique(result.scenario, return_counts=True), strict=True))


def test_daily_draws_are_distinct_within_a_day() -> None:
    """Each day's draw holds distinct ids, one row per day."""
    schedule = draw_daily(10, 3, 50, np.random.default_rng(0))
    expected = (50, 3)
    assert expected == schedule.shape
    assert all(len(set(row.tolist())) == 3 for row in schedule)


def test_amount_above_220_is_always_fraud(small: pd.DataFrame) -> None:
    """In simulated data every amount above 220 is fraud, and scenario 1 is only such amounts."""
    assert (small.loc[small["TX_AMOUNT"] > 220, "TX_FRAUD"] == 1).all()
    assert (small.loc[small["TX_FRAUD_SCENARIO"] == 1, "TX_AMOUNT"] > 220).all()


def test_fraud_flag_matches_scenario(small: pd.DataFrame) -> None:
    """TX_FRAUD is 1 exactly when TX_FRAUD_SCENARIO is not 0; all three scenarios occur."""
    assert ((small["TX_FRAUD_SCENARIO"] > 0).astype(int) == small["TX_FRAUD"]).all()
    assert {0, 1, 2, 3} == set(small["TX_FRAUD_SCENARIO"].unique().tolist())


def test_compromised_terminals_take_only_fraud_that_day(small: pd.DataFrame) -> None:
    """On a day a terminal shows scenario-2 fraud, all its transactions are fraud."""
    days = small.groupby(["TERMINAL_ID", "TX_TIME_DAYS"])
    hit = days["TX_FRAUD_SCENARIO"].transform(lambda s: (s == 2).any())
    assert hit.any()
    assert (small.loc[hit, "TX_FRAUD"] == 1).all()


def test_card_fraud_amounts_are_five_times_the_profile(small: pd.DataFrame) -> None:
    """Scenario-3 amounts sit around 5× the customer's mean amount."""
    world = build_world(SMALL)
    fraud = small[small["TX_FRAUD_SCENARIO"] == 3]
    ratio = fraud["TX_AMOUNT"] / world.customers.mean_amount[fraud["CUSTOMER_ID"].to_numpy()]
    expected = 5.0
    assert expected == pytest.approx(ratio.median(), rel=0.1)


def test_draws_stop_before_the_last_day() -> None:
    """Draws run over days 0 … max_day-1, so a one-day dataset gets no scenario 2 or 3."""
    one_day = Transactions(
        customer=np.arange(30, dtype=np.int64),
        terminal=np.zeros(30, np.int64),
        seconds=np.full(30, 43200, np.int64),
        amount=np.full(30, 10.0),
        scenario=np.zeros(30, np.int8),
    )
    two_days = Transactions(
        customer=np.tile(one_day.customer, 2),
        terminal=np.tile(one_day.terminal, 2),
        seconds=np.concatenate([one_day.seconds, one_day.seconds + SECONDS_PER_DAY]),
        amount=np.tile(one_day.amount, 2),
        scenario=np.tile(one_day.scenario, 2),
    )
    rng = np.random.default_rng
    assert {0} == set(add_handbook_frauds(one_day, 30, 1, rng(0)).scenario.tolist())
    assert {2, 3} == set(add_handbook_frauds(two_days, 30, 1, rng(0)).scenario.tolist())
