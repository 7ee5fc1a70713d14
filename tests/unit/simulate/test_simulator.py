"""The generative process: determinism, shape, and the handbook's profile distributions."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from fraudops.simulate import HANDBOOK_SCHEMA, simulate
from fraudops.simulate._profiles import Customers, Terminals, link
from fraudops.simulate._simulator import build_world
from tests.unit.simulate.conftest import SMALL

# Share of N(43200, 20000) time draws that survive the 0 < t < 86400 filter.
KEPT_SHARE = float(norm.cdf(43200 / 20000) - norm.cdf(-43200 / 20000))
# Redrawing negative N(m, m/2) amounts from U(0, 2m) lifts the mean to m·(1 + φ(2)/2).
REDRAW_LIFT = 1 + float(norm.pdf(2.0)) / 2


def test_same_seed_gives_the_same_table() -> None:
    """Two runs with one config produce identical tables."""
    assert simulate(SMALL).equals(simulate(SMALL))


def test_different_seed_gives_a_different_table() -> None:
    """Changing only the seed changes the data."""
    other = dataclasses.replace(SMALL, seed=SMALL.seed + 1)
    assert not simulate(SMALL).equals(simulate(other))


def test_columns_follow_the_handbook_schema() -> None:
    """The table has the handbook's column names and types, in order."""
    expected = HANDBOOK_SCHEMA
    assert expected == simulate(SMALL).schema


def test_ids_are_ranks_in_datetime_order(small: pd.DataFrame) -> None:
    """TRANSACTION_ID is 0 … n-1 and TX_DATETIME never goes backwards."""
    assert list(range(len(small))) == small["TRANSACTION_ID"].tolist()
    assert small["TX_DATETIME"].is_monotonic_increasing


def test_time_columns_agree(small: pd.DataFrame) -> None:
    """TX_DATETIME = start + TX_TIME_SECONDS and TX_TIME_DAYS is its whole-day part."""
    start = datetime.combine(SMALL.start, datetime.min.time())
    expected = pd.Series(
        [start + timedelta(seconds=int(s)) for s in small["TX_TIME_SECONDS"]], name="TX_DATETIME"
    )
    assert expected.tolist() == small["TX_DATETIME"].dt.to_pydatetime().tolist()
    assert (small["TX_TIME_SECONDS"] // 86400).tolist() == small["TX_TIME_DAYS"].tolist()


def test_every_day_is_covered(small: pd.DataFrame) -> None:
    """Transactions span days 0 … n_days-1."""
    assert list(range(SMALL.n_days)) == sorted(small["TX_TIME_DAYS"].unique().tolist())


def test_times_fall_strictly_inside_the_day(small: pd.DataFrame) -> None:
    """Time of day is within (0, 86400) and centred on noon."""
    time_of_day = small["TX_TIME_SECONDS"] % 86400
    assert (time_of_day > 0).all()
    assert abs(43200 - time_of_day.mean()) < 1500


def test_transaction_count_matches_the_profiles(small: pd.DataFrame) -> None:
    """Count ≈ Σ mean_nb_tx_per_day × days × kept share, over customers with a terminal."""
    world = build_world(SMALL)
    active = world.reach.counts > 0
    expected = world.customers.mean_nb_tx_per_day[active].sum() * SMALL.n_days * KEPT_SHARE
    assert expected == pytest.approx(len(small), rel=0.04)


def test_mean_transactions_per_day_is_about_two(small: pd.DataFrame) -> None:
    """Daily activity ~ U(0, 4) gives about 2 transactions a day per customer before drops."""
    per_day = len(small) / (SMALL.n_customers * SMALL.n_days * KEPT_SHARE)
    expected = 2.0
    assert expected == pytest.approx(per_day, abs=0.3)


def test_amounts_are_non_negative_cents(small: pd.DataFrame) -> None:
    """Amounts are ≥ 0 and have at most two decimals."""
    cents = small["TX_AMOUNT"].to_numpy() * 100
    assert (small["TX_AMOUNT"] >= 0).all()
    assert np.allclose(cents, np.round(cents), atol=1e-6)


def test_amounts_follow_each_customers_mean(small: pd.DataFrame) -> None:
    """Unscaled amounts average the customer's mean_amount (lifted by redraws), per customer too."""
    world = build_world(SMALL)
    plain = small[small["TX_FRAUD_SCENARIO"] != 3]
    profile_mean = world.customers.mean_amount[plain["CUSTOMER_ID"].to_numpy()]
    expected = REDRAW_LIFT
    assert expected == pytest.approx(plain["TX_AMOUNT"].sum() / profile_mean.sum(), abs=0.015)
    per_customer = plain.groupby("CUSTOMER_ID")["TX_AMOUNT"].mean()
    expected = world.customers.mean_amount[per_customer.index.to_numpy()]
    assert np.corrcoef(expected, per_customer.to_numpy())[0, 1] > 0.95


def test_terminals_are_within_radius_of_the_customer(small: pd.DataFrame) -> None:
    """Every transaction's terminal lies strictly within r of its customer's home."""
    world = build_world(SMALL)
    customer = small["CUSTOMER_ID"].to_numpy()
    distance = np.hypot(
        small["TERMINAL_X"].to_numpy() - world.customers.x[customer],
        small["TERMINAL_Y"].to_numpy() - world.customers.y[customer],
    )
    assert (distance < SMALL.radius).all()


def test_terminal_coordinates_are_the_terminals(small: pd.DataFrame) -> None:
    """TERMINAL_X/Y are the location of TERMINAL_ID."""
    world = build_world(SMALL)
    terminal = small["TERMINAL_ID"].to_numpy()
    assert world.terminals.x[terminal].tolist() == small["TERMINAL_X"].tolist()
    assert world.terminals.y[terminal].tolist() == small["TERMINAL_Y"].tolist()


def test_link_keeps_only_terminals_strictly_inside_the_radius() -> None:
    """A terminal exactly at distance r is out; one just inside is in."""
    one = np.array([50.0])
    customers = Customers(x=one, y=one, mean_amount=one, std_amount=one, mean_nb_tx_per_day=one)
    terminals = Terminals(x=np.array([55.0, 54.999, 50.0, 80.0]), y=np.array([50.0] * 4))
    reach = link(customers, terminals, 5.0)
    expected = [1, 2]
    assert expected == reach.terminals.tolist()


def test_customers_without_terminals_make_no_transactions() -> None:
    """With a tiny radius most customers reach nothing and stay silent."""
    config = dataclasses.replace(SMALL, radius=0.5, n_days=5)
    world = build_world(config)
    table = simulate(config).to_pandas()
    silent = set(np.flatnonzero(world.reach.counts == 0).tolist())
    assert silent, "the radius should leave some customers without terminals"
    assert set() == silent & set(table["CUSTOMER_ID"].tolist())


def test_terminal_choice_is_spread_over_the_reach(small: pd.DataFrame) -> None:
    """Customers use several of their terminals, not one favourite."""
    world = build_world(SMALL)
    used = small[small["TX_FRAUD_SCENARIO"] == 0].groupby("CUSTOMER_ID")["TERMINAL_ID"].nunique()
    n_tx = small[small["TX_FRAUD_SCENARIO"] == 0].groupby("CUSTOMER_ID").size()
    busy = n_tx[(n_tx >= 20) & (world.reach.counts[n_tx.index.to_numpy()] >= 5)].index
    assert len(busy) > 0
    assert (used[busy] >= 3).all()
