"""Test-wide settings and shared fixtures.

Hypothesis checks behaviour, not speed (speed lives in bench/); a tiny trained model serves
the learn, decide and api tests alike.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import settings

from fraudops.clock import ManualClock
from fraudops.ingest import ingest_sources, load_mapping
from fraudops.learn.jobs import train_model
from fraudops.learn.report import Report
from fraudops.simulate import SimulationConfig, simulate, write_dataset
from tests.services import postgres_schema_url

# A per-example deadline would turn a slow, shared CI machine into flaky failures; in CI the
# examples are also derandomised so a failure reproduces from the log.
settings.register_profile("default", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") == "true" else "default")


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


@pytest.fixture(scope="session")
def retrained_model(trained_lake: TrainedLake, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second model of the tiny lake, trained on a week earlier: another version to promote."""
    model_dir = tmp_path_factory.mktemp("retrained") / "model"
    train_model(
        trained_lake.lake,
        model_dir,
        train_start=TINY_TRAIN_START - timedelta(days=7),
        n_folds=2,
        clock=ManualClock(datetime(2018, 6, 24, tzinfo=UTC)),
    )
    return model_dir


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind fraudops runs on: a SQLite file in a folder that does
    not exist yet, or a private schema of the test PostgreSQL (dropped after)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'databases' / 'fraudops.db'}"
    else:
        with postgres_schema_url() as url:
            yield url
