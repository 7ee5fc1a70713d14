"""Synthetic feature tables: the shape the feature stage produces, with a learnable signal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fraudops.clock import ManualClock
from fraudops.ingest import ingest_sources, load_mapping
from fraudops.learn.jobs import train_model
from fraudops.learn.report import Report
from fraudops.simulate import SimulationConfig, simulate, write_dataset

FEATURES = ("signal", "noise", "amount")


def synthetic_features(
    days: int = 42, per_day: int = 400, cards: int = 300, seed: int = 0
) -> pd.DataFrame:
    """A feature table over ``days`` days from 2018-01-01 where ``signal`` predicts fraud."""
    rng = np.random.default_rng(seed)
    n = days * per_day
    start = datetime(2018, 1, 1, tzinfo=UTC)
    offsets = np.sort(rng.integers(0, days * 86_400, size=n))
    signal = rng.normal(size=n)
    fraud = (signal + rng.normal(scale=0.7, size=n) > 2.3).astype(np.int8)
    return pd.DataFrame(
        {
            "transaction_id": [f"t{i}" for i in range(n)],
            "ts": pd.to_datetime(start) + pd.to_timedelta(offsets, unit="s"),
            "customer_id": [f"c{i}" for i in rng.integers(0, cards, size=n)],
            "terminal_id": [f"m{i}" for i in rng.integers(0, 50, size=n)],
            "is_fraud": fraud,
            "scenario": fraud.astype(np.int16),
            "signal": signal,
            "noise": rng.normal(size=n),
            "amount": rng.gamma(2.0, 30.0, size=n),
        }
    )


@pytest.fixture(scope="session")
def feature_table() -> pd.DataFrame:
    """Six weeks of synthetic feature rows, about 3 % fraud."""
    return synthetic_features()


@dataclass(frozen=True)
class TrainedLake:
    """A tiny simulated lake and the model trained on it with two folds."""

    lake: Path
    model_dir: Path
    report: Report


TINY_TRAIN_START = date(2018, 5, 20)


@pytest.fixture(scope="session")
def trained_lake(tmp_path_factory: pytest.TempPathFactory) -> TrainedLake:
    """Simulate ten weeks of a small bank, ingest it, train two folds (a few seconds)."""
    root = tmp_path_factory.mktemp("tiny")
    table = simulate(SimulationConfig(n_customers=400, n_terminals=800, n_days=70, seed=1))
    dataset = write_dataset(table, root / "sim", "parquet")
    ingest_sources([str(dataset)], root / "lake", load_mapping("handbook"))
    report = train_model(
        root / "lake",
        root / "model",
        train_start=TINY_TRAIN_START,
        n_folds=2,
        clock=ManualClock(datetime(2018, 7, 1, tzinfo=UTC)),
    )
    return TrainedLake(lake=root / "lake", model_dir=root / "model", report=report)
