"""``simulate``: the whole generative process, from a config to a transaction table."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from fraudops.progress import Progress, no_progress
from fraudops.simulate import _extra_frauds, _profiles, _transactions
from fraudops.simulate._config import SimulationConfig
from fraudops.simulate._handbook_frauds import add_handbook_frauds
from fraudops.simulate._table import to_table
from fraudops.simulate._transactions import concatenate

# One independent random stream per purpose: sizing or enabling one part never shifts another.
_STREAMS = (
    "customers",
    "terminals",
    "transactions",
    "handbook_frauds",
    "card_testing",
    "account_takeover",
)


@dataclass(frozen=True)
class World:
    """The profiles a run draws before any transaction: who, where, and which terminals."""

    customers: _profiles.Customers
    terminals: _profiles.Terminals
    reach: _profiles.Reach


def streams(seed: int) -> dict[str, np.random.Generator]:
    """The independent random generators of a run, by purpose."""
    children = np.random.SeedSequence(seed).spawn(len(_STREAMS))
    return {
        name: np.random.default_rng(child) for name, child in zip(_STREAMS, children, strict=True)
    }


def build_world(config: SimulationConfig) -> World:
    """The customer and terminal profiles ``simulate`` uses for ``config``."""
    rng = streams(config.seed)
    customers = _profiles.draw_customers(config.n_customers, rng["customers"])
    terminals = _profiles.draw_terminals(config.n_terminals, rng["terminals"])
    return World(customers, terminals, _profiles.link(customers, terminals, config.radius))


def simulate(config: SimulationConfig, progress: Progress = no_progress) -> pa.Table:
    """Simulate labelled transactions with the handbook's process, plus any extra scenarios.

    The result has HANDBOOK_SCHEMA columns, is sorted by TX_DATETIME, and TRANSACTION_ID is the
    0-based row rank. The same config gives the same table.
    """
    rng = streams(config.seed)
    progress("profiles", 0, 1)
    world = build_world(config)
    progress("profiles", 1, 1)
    tx = _transactions.generate(
        world.customers, world.reach, config.n_days, rng["transactions"], progress=progress
    )
    tx = add_handbook_frauds(
        tx, config.n_customers, config.n_terminals, rng["handbook_frauds"], progress=progress
    )
    extras = []
    if "card_testing" in config.scenarios:
        extras.append(
            _extra_frauds.card_testing(
                config.n_customers, config.n_terminals, config.n_days, rng["card_testing"]
            )
        )
    if "account_takeover" in config.scenarios:
        extras.append(
            _extra_frauds.account_takeover(
                world.customers,
                world.terminals,
                config.n_days,
                config.radius,
                rng["account_takeover"],
            )
        )
    if extras:
        tx = concatenate([tx, *extras]).sorted_by_time()
    return to_table(tx, world.terminals, config.start)
