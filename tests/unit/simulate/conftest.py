"""Small simulated datasets shared by the simulator tests (each built once per session)."""

from __future__ import annotations

import pandas as pd
import pytest

from fraudops.simulate import EXTRA_SCENARIOS, SimulationConfig, simulate

SMALL = SimulationConfig(n_customers=200, n_terminals=400, n_days=30, seed=7)
SMALL_WITH_EXTRAS = SimulationConfig(
    n_customers=200, n_terminals=400, n_days=30, seed=7, scenarios=frozenset(EXTRA_SCENARIOS)
)


@pytest.fixture(scope="session")
def small() -> pd.DataFrame:
    """The handbook-only small dataset as a DataFrame."""
    frame: pd.DataFrame = simulate(SMALL).to_pandas()
    return frame


@pytest.fixture(scope="session")
def small_with_extras() -> pd.DataFrame:
    """The small dataset with both extra scenarios switched on."""
    frame: pd.DataFrame = simulate(SMALL_WITH_EXTRAS).to_pandas()
    return frame
