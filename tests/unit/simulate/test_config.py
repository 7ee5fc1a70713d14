"""The simulation config and the package's public surface."""

from __future__ import annotations

from datetime import date

import pytest

import fraudops.simulate
from fraudops.errors import InputError
from fraudops.simulate import EXTRA_SCENARIOS, SimulationConfig


def test_defaults_are_the_handbooks() -> None:
    """The default config is the handbook's dataset: 5000 × 10000 × 183 days from 2018-04-01."""
    config = SimulationConfig()
    assert (5000, 10000, 183, date(2018, 4, 1), 5.0, frozenset()) == (
        config.n_customers,
        config.n_terminals,
        config.n_days,
        config.start,
        config.radius,
        config.scenarios,
    )


def test_unknown_scenario_is_an_input_error() -> None:
    """A scenario name we do not know fails and names the choices."""
    with pytest.raises(InputError, match="card_testing"):
        SimulationConfig(scenarios=frozenset({"skimming"}))


@pytest.mark.parametrize(
    "bad",
    [{"n_customers": 0}, {"n_terminals": 0}, {"n_days": 0}, {"radius": 0.0}, {"seed": -1}],
)
def test_impossible_sizes_are_input_errors(bad: dict[str, float]) -> None:
    """Zero sizes, a non-positive radius or a negative seed are rejected."""
    with pytest.raises(InputError):
        SimulationConfig(**bad)  # type: ignore[arg-type]


def test_active_scenarios_follow_the_order_they_are_applied() -> None:
    """Handbook scenarios come first, then the enabled extras as 4 and 5."""
    expected = {"both": (1, 2, 3, 4, 5), "takeover": (1, 2, 3, 5), "none": (1, 2, 3)}
    actual = {
        "both": SimulationConfig(scenarios=frozenset(EXTRA_SCENARIOS)).active_scenarios,
        "takeover": SimulationConfig(scenarios=frozenset({"account_takeover"})).active_scenarios,
        "none": SimulationConfig().active_scenarios,
    }
    assert expected == actual


def test_public_surface_is_pinned() -> None:
    """Adding or removing a public name of the simulator is a deliberate change to this list."""
    expected = {
        "EXTRA_SCENARIOS",
        "FILE_FORMATS",
        "HANDBOOK_SCHEMA",
        "SCENARIO_NAMES",
        "SimulationConfig",
        "SimulationReport",
        "run_simulation",
        "simulate",
        "write_dataset",
    }
    assert expected == set(fraudops.simulate.__all__)
    assert all(hasattr(fraudops.simulate, name) for name in expected)
