"""A simulation run end to end: simulate, write the dataset, and record what was made."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from fraudops.progress import Progress, no_progress
from fraudops.simulate._config import SCENARIO_NAMES, SimulationConfig
from fraudops.simulate._dataset import publish, write_dataset
from fraudops.simulate._simulator import simulate

SUMMARY_FILE = "simulation.json"


@dataclass(frozen=True)
class SimulationReport:
    """What a run produced: sizes, frauds per scenario, time taken and where the data is."""

    config: SimulationConfig
    transactions: int
    frauds_by_scenario: dict[str, int]
    seconds: float
    path: Path

    @property
    def frauds(self) -> int:
        return sum(self.frauds_by_scenario.values())

    @property
    def fraud_rate(self) -> float:
        return self.frauds / self.transactions if self.transactions else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values with snake_case keys."""
        return {
            "transactions": self.transactions,
            "frauds": self.frauds,
            "fraud_rate": self.fraud_rate,
            "frauds_by_scenario": dict(self.frauds_by_scenario),
            "customers": self.config.n_customers,
            "terminals": self.config.n_terminals,
            "days": self.config.n_days,
            "start": self.config.start.isoformat(),
            "seed": self.config.seed,
            "radius": self.config.radius,
            "scenarios": sorted(self.config.scenarios),
            "seconds": round(self.seconds, 3),
            "path": str(self.path),
        }


def count_frauds(table: pa.Table, config: SimulationConfig) -> dict[str, int]:
    """Fraud transactions per active scenario name, in the order scenarios are applied."""
    counts = pc.value_counts(table["TX_FRAUD_SCENARIO"]).to_pylist()
    found = {int(row["values"]): int(row["counts"]) for row in counts}
    return {SCENARIO_NAMES[s]: found.get(s, 0) for s in config.active_scenarios}


def run_simulation(
    config: SimulationConfig,
    out: Path,
    file_format: str = "parquet",
    progress: Progress = no_progress,
) -> SimulationReport:
    """Simulate, write ``out/transactions.<ext>`` and ``out/simulation.json``; report the run."""
    began = time.perf_counter()
    table = simulate(config, progress)
    progress("writing", 0, 1)
    path = write_dataset(table, out, file_format)
    progress("writing", 1, 1)
    report = SimulationReport(
        config=config,
        transactions=table.num_rows,
        frauds_by_scenario=count_frauds(table, config),
        seconds=time.perf_counter() - began,
        path=path,
    )
    summary = {**report.to_dict(), "format": file_format, "path": path.name}
    tmp = out / f".{SUMMARY_FILE}.tmp"
    tmp.write_text(json.dumps(summary, indent=2) + "\n")
    publish(tmp, out / SUMMARY_FILE)
    return report
