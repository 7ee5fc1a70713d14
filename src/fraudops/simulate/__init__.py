"""The transaction simulator: the fraud handbook's generative process, deterministic by seed.

Customers and terminals sit on a 100×100 grid; each customer pays at terminals strictly
within ``radius``; fraud follows the handbook's three scenarios, plus the optional
``card_testing`` (≈ 0.5 cards a day, bursts of tiny amounts then a large one: ≈ 500 frauds on
the default size) and ``account_takeover`` (≈ 0.3 cards a day used at night far from home:
≈ 300 frauds) ones, labelled 4 and 5; ``_extra_frauds`` documents their rates.
"""

from fraudops.simulate._config import EXTRA_SCENARIOS, SCENARIO_NAMES, SimulationConfig
from fraudops.simulate._dataset import FILE_FORMATS, write_dataset
from fraudops.simulate._report import SimulationReport, run_simulation
from fraudops.simulate._simulator import simulate
from fraudops.simulate._table import HANDBOOK_SCHEMA

__all__ = [
    "EXTRA_SCENARIOS",
    "FILE_FORMATS",
    "HANDBOOK_SCHEMA",
    "SCENARIO_NAMES",
    "SimulationConfig",
    "SimulationReport",
    "run_simulation",
    "simulate",
    "write_dataset",
]
