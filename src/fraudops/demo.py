"""``fraudops demo``: the whole loop on embedded defaults, small enough to run in minutes.

simulate → ingest (with a deliberately malformed second source) → features → train with the
handbook protocol → replay the held-back days through the online path → summary.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from fraudops.decide.engine import DecisionEngine
from fraudops.decide.ensemble_scorer import load_scorer
from fraudops.decide.policy import Policy
from fraudops.decide.replay import replay, truth_of
from fraudops.features import InMemoryFeatureState, OnlineFeatures, feature_definition
from fraudops.ingest import ingest_sources, load_mapping
from fraudops.learn.jobs import POLICY_FILE, train_model
from fraudops.progress import Progress, no_progress
from fraudops.simulate import SimulationConfig, run_simulation


@dataclass(frozen=True)
class DemoPlan:
    """The demo's size and windows: a scaled-down handbook dataset and its protocol."""

    customers: int = 2500
    terminals: int = 5000
    days: int = 91
    start: date = date(2018, 4, 1)
    seed: int = 7
    train_days: int = 7
    delay_days: int = 7
    heldback_days: int = 7
    warmup_days: int = 37

    @property
    def decide_start(self) -> datetime:
        """First held-back day: the replay decides from here on."""
        first = datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC)
        return first + timedelta(days=self.days - self.heldback_days)

    @property
    def end(self) -> datetime:
        return self.decide_start + timedelta(days=self.heldback_days)

    @property
    def train_start(self) -> date:
        """Training window placed so that its test window is exactly the held-back days."""
        return (self.decide_start - timedelta(days=self.delay_days + self.train_days)).date()


HANDBOOK_HEADER = (
    "TRANSACTION_ID",
    "TX_DATETIME",
    "CUSTOMER_ID",
    "TERMINAL_ID",
    "TX_AMOUNT",
    "TX_FRAUD",
    "TX_FRAUD_SCENARIO",
)


def write_malformed_source(out: Path, first_free_id: int, plan: DemoPlan) -> list[Path]:
    """A partner feed in the handbook's columns: a few good rows, duplicates and broken records.

    Every broken record is a different kind of mistake real feeds make, so the dead-letter
    report shows one reason per kind.
    """
    out.mkdir(parents=True, exist_ok=True)
    when = datetime(plan.start.year, plan.start.month, plan.start.day) + timedelta(days=3)
    stamp = when.strftime("%Y-%m-%d %H:%M:%S")
    good = [(first_free_id + n, stamp, n, n, f"{10 + n}.50", 0, 0) for n in range(5)]
    duplicates: list[tuple[object, ...]] = [(n, stamp, 1, 1, "12.00", 0, 0) for n in range(3)]
    bad: list[tuple[object, ...]] = [
        (first_free_id + 100, "not a date", 1, 1, "10.00", 0, 0),
        (first_free_id + 101, "2018-13-45 25:61:00", 1, 1, "10.00", 0, 0),
        (first_free_id + 102, stamp, 1, 1, "ten euros", 0, 0),
        (first_free_id + 103, stamp, 1, 1, "-4.20", 0, 0),
        (first_free_id + 104, stamp, "", 1, "9.99", 0, 0),
        ("", stamp, 1, 1, "9.99", 0, 0),
        (first_free_id + 106, stamp, 1, 1, "9.99", "maybe", 0),
    ]
    csv_path = out / "partner-feed.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HANDBOOK_HEADER)
        writer.writerows(good + duplicates + bad)
    jsonl_path = out / "partner-feed.jsonl"
    records = [
        dict(
            zip(
                HANDBOOK_HEADER, (first_free_id + 200 + n, stamp, n, n, 20.0 + n, 0, 0), strict=True
            )
        )
        for n in range(3)
    ]
    lines = [json.dumps(record) for record in records]
    lines.insert(1, '{"TRANSACTION_ID": 1, "TX_DATETIME": "2018-04-04 10:00:00", "TX_AMOU')
    jsonl_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [csv_path, jsonl_path]


def run_demo(
    workdir: Path, plan: DemoPlan = DemoPlan(), progress: Progress = no_progress
) -> dict[str, Any]:
    """Run every stage once and return the summary the CLI prints."""
    began = time.perf_counter()
    lake = workdir / "lake"
    sources = workdir / "sources"
    config = SimulationConfig(
        n_customers=plan.customers,
        n_terminals=plan.terminals,
        n_days=plan.days,
        start=plan.start,
        seed=plan.seed,
    )
    simulated = run_simulation(config, sources / "simulated", progress=progress)
    malformed = write_malformed_source(sources / "partner", simulated.transactions, plan)
    ingested = ingest_sources(
        [str(sources / "simulated"), *map(str, malformed)],
        lake,
        load_mapping("handbook"),
        progress=progress,
    )
    trained = train_model(
        lake,
        workdir / "model",
        train_start=plan.train_start,
        train_days=plan.train_days,
        delay_days=plan.delay_days,
        test_days=plan.heldback_days,
        progress=progress,
    )
    definition = feature_definition(plan.delay_days)
    engine = DecisionEngine(
        OnlineFeatures(definition, InMemoryFeatureState()),
        load_scorer(workdir / "model"),
        Policy.from_file(workdir / "model" / POLICY_FILE),
    )
    warmup_start = plan.decide_start - timedelta(days=plan.warmup_days)
    replayed, _ = replay(
        engine,
        lake,
        warmup_start=warmup_start,
        decide_start=plan.decide_start,
        end=plan.end,
        truth=truth_of(lake, plan.decide_start, plan.end),
        progress=progress,
    )
    report = trained.as_dict()
    return {
        "simulated": simulated.to_dict(),
        "ingest": ingested.to_dict(),
        "training": {
            key: report[key]
            for key in (
                "roc_auc",
                "average_precision",
                "card_precision_at_100",
                "model_version",
                "seconds",
            )
        },
        "replay": {
            "first_day": plan.decide_start.date(),
            "last_day": (plan.end - timedelta(days=1)).date(),
            **replayed.to_dict(),
        },
        "seconds": time.perf_counter() - began,
    }
