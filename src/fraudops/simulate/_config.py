"""What a simulation run is asked to produce: sizes, period, seed and fraud scenarios."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from fraudops.errors import InputError

EXTRA_SCENARIOS: tuple[str, ...] = ("card_testing", "account_takeover")
"""Fraud scenarios beyond the handbook's three, off unless asked for by name."""

SCENARIO_NAMES: dict[int, str] = {
    1: "large_amount",
    2: "compromised_terminal",
    3: "compromised_card",
    4: "card_testing",
    5: "account_takeover",
}
"""The name of each TX_FRAUD_SCENARIO value (0 means genuine)."""

HANDBOOK_SCENARIOS: tuple[int, ...] = (1, 2, 3)


@dataclass(frozen=True)
class SimulationConfig:
    """The handbook's ``generate_dataset`` arguments plus a seed and the extra scenarios."""

    n_customers: int = 5000
    n_terminals: int = 10000
    n_days: int = 183
    start: date = date(2018, 4, 1)
    seed: int = 0
    radius: float = 5.0
    scenarios: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        for name, value in (
            ("n_customers", self.n_customers),
            ("n_terminals", self.n_terminals),
            ("n_days", self.n_days),
        ):
            if value < 1:
                raise InputError(f"{name} must be at least 1, got {value}")
        if not self.radius > 0:
            raise InputError(f"radius must be positive, got {self.radius}")
        if self.seed < 0:
            raise InputError(f"seed must be non-negative, got {self.seed}")
        unknown = sorted(set(self.scenarios) - set(EXTRA_SCENARIOS))
        if unknown:
            raise InputError(
                f"unknown scenario {', '.join(unknown)}; choose from {', '.join(EXTRA_SCENARIOS)}"
            )

    @property
    def active_scenarios(self) -> tuple[int, ...]:
        """The TX_FRAUD_SCENARIO values this run can produce, in the order they are applied."""
        extra = tuple(4 + i for i, name in enumerate(EXTRA_SCENARIOS) if name in self.scenarios)
        return HANDBOOK_SCENARIOS + extra
