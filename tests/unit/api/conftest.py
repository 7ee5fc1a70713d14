"""A decision service around the tiny trained model, and models that misbehave on cue."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from fastapi.testclient import TestClient

from fraudops.api import Runtime, build_runtime, create_app
from fraudops.api.auth import key_hash
from fraudops.decide.ensemble_scorer import load_scorer
from fraudops.decide.scorer import Scorer
from fraudops.features.replay import lake_events
from fraudops.settings import (
    ApiSettings,
    BreakerSettings,
    DecisionLogSettings,
    ScoreGuardSettings,
    ServiceSettings,
    Settings,
)
from fraudops.types import Reason, Transaction
from tests.conftest import TrainedLake

KEY = "fo_test-key-for-the-api-tests"
HEADERS = {"X-API-Key": KEY}

FloatArray = npt.NDArray[np.float64]


def body_of(tx: Transaction) -> dict[str, Any]:
    """A transaction as the JSON a client posts."""
    return {
        "transaction_id": tx.transaction_id,
        "timestamp": tx.timestamp.isoformat(),
        "customer_id": tx.customer_id,
        "terminal_id": tx.terminal_id,
        "amount": tx.amount,
        "terminal_x": tx.terminal_x,
        "terminal_y": tx.terminal_y,
    }


@pytest.fixture(scope="session")
def transactions(trained_lake: TrainedLake) -> list[Transaction]:
    """Two days of the tiny lake's transactions, in time order."""
    events = lake_events(
        trained_lake.lake,
        start=datetime(2018, 6, 1, tzinfo=UTC),
        end=datetime(2018, 6, 3, tzinfo=UTC),
    )
    return [event for event in events if isinstance(event, Transaction)]


def service_settings(tmp_path: Path, model_dir: Path, **service: Any) -> Settings:
    """Settings for a service on ``model_dir`` whose log and spill live in ``tmp_path``."""
    breaker = service.pop("breaker", BreakerSettings(failure_threshold=3, reset_timeout_s=60.0))
    guard = service.pop("score_guard", ScoreGuardSettings())
    service.setdefault("warmup_rows", 5)
    return Settings(
        model_dir=model_dir,
        decision_log=DecisionLogSettings(
            url=f"sqlite:///{tmp_path / 'decisions.db'}",
            spill_dir=tmp_path / "spill",
            flush_interval_ms=20.0,
        ),
        api=ApiSettings(key_hashes=(key_hash(KEY),)),
        service=ServiceSettings(**service),
        breaker=breaker,
        score_guard=guard,
    )


class FaultyScorer:
    """A real model that can be told to raise, hang, answer NaN or a constant."""

    def __init__(self, real: Scorer, version: str = "faulty-champion") -> None:
        self.real = real
        self.version = version
        self.feature_names = real.feature_names
        self.mode = "ok"
        self.hang_s = 0.5
        self.calls = 0

    def score(self, features: FloatArray) -> float:
        self.calls += 1
        if self.mode == "raise":
            raise RuntimeError("the model's native library crashed")
        if self.mode == "hang":
            time.sleep(self.hang_s)
        if self.mode == "nan":
            return float("nan")
        if self.mode == "constant":
            return 0.123
        return self.real.score(features)

    def score_batch(self, features: FloatArray) -> FloatArray:
        return np.array([self.score(row) for row in features])

    def explain(self, features: FloatArray, top: int = 3) -> tuple[Reason, ...]:
        return self.real.explain(features, top)


@pytest.fixture
def real_scorer(trained_lake: TrainedLake) -> Scorer:
    """The tiny model, freshly loaded."""
    return load_scorer(trained_lake.model_dir)


@pytest.fixture
def faulty(real_scorer: Scorer) -> FaultyScorer:
    """A champion that behaves until told otherwise."""
    return FaultyScorer(real_scorer)


RuntimeHook = Callable[[Runtime], None]


@contextmanager
def running_service(
    settings: Settings,
    *,
    scorers: list[tuple[str, Scorer]] | None = None,
    **parts: Any,
) -> Iterator[tuple[TestClient, Runtime]]:
    """A started service (lifespan run) and its runtime; closed (log flushed) at exit."""
    built: list[Runtime] = []

    def build(s: Settings) -> Runtime:
        runtime = build_runtime(s, scorers=scorers, **parts)
        built.append(runtime)
        return runtime

    with TestClient(create_app(settings, build=build)) as client:
        yield client, built[0]


@pytest.fixture
def service(tmp_path: Path, trained_lake: TrainedLake) -> Iterator[tuple[TestClient, Runtime]]:
    """The service on the tiny model with default limits."""
    with running_service(service_settings(tmp_path, trained_lake.model_dir)) as running:
        yield running
