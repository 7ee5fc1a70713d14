"""The demo runs the whole loop, and the online path it replays agrees with training's view."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fraudops.decide.engine import DecisionEngine
from fraudops.decide.ensemble_scorer import load_scorer
from fraudops.decide.policy import Policy
from fraudops.decide.replay import replay, truth_of
from fraudops.demo import DemoPlan, run_demo
from fraudops.features import (
    InMemoryFeatureState,
    OnlineFeatures,
    build_feature_table,
    feature_definition,
)

PLAN = DemoPlan(customers=400, terminals=800, days=60, seed=3)


@dataclass(frozen=True)
class DemoRun:
    workdir: Path
    summary: dict[str, Any]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """One small demo, shared by the tests of this module (a few seconds)."""
    workdir = tmp_path_factory.mktemp("demo")
    return DemoRun(workdir, run_demo(workdir, PLAN))


def test_ingest_report_reconciles_and_shows_every_kind_of_reject(demo_run: DemoRun) -> None:
    """The malformed partner feed lands in the dead-letter store, one reason per mistake."""
    ingest = demo_run.summary["ingest"]
    assert ingest["received"] == ingest["accepted"] + ingest["duplicates"] + ingest["rejected"]
    expected = {
        "amount_out_of_range": 1,
        "bad_label": 1,
        "bad_timestamp": 2,
        "bad_type": 1,
        "malformed_line": 1,
        "missing_field": 2,
    }
    assert (expected, 3) == (ingest["rejected_by_reason"], ingest["duplicates"])


def test_every_held_back_transaction_gets_one_decision(demo_run: DemoRun) -> None:
    """The replay decides each transaction of the held-back days exactly once."""
    replayed = demo_run.summary["replay"]
    held_back = build_feature_table(
        demo_run.workdir / "lake", start=PLAN.decide_start, end=PLAN.end
    )
    assert (len(held_back), len(held_back)) == (
        replayed["decisions"],
        sum(replayed["by_action"].values()),
    )


def test_online_scores_equal_offline_scores(demo_run: DemoRun) -> None:
    """Train as you serve: the replayed online path scores exactly what training's table gives."""
    lake, model_dir = demo_run.workdir / "lake", demo_run.workdir / "model"
    definition = feature_definition(PLAN.delay_days)
    scorer = load_scorer(model_dir)
    engine = DecisionEngine(
        OnlineFeatures(definition, InMemoryFeatureState()), scorer, Policy(0.2, 0.8)
    )
    _, decisions = replay(
        engine,
        lake,
        warmup_start=PLAN.decide_start - timedelta(days=PLAN.warmup_days),
        decide_start=PLAN.decide_start,
        end=PLAN.end,
        truth=truth_of(lake, PLAN.decide_start, PLAN.end),
    )
    offline = build_feature_table(lake, definition, start=PLAN.decide_start, end=PLAN.end)
    expected = scorer.score_batch(offline[list(definition.names)].to_numpy())
    online = {d.transaction_id: d.score for d in decisions}
    actual = np.array([online[tx_id] for tx_id in offline["transaction_id"]])
    assert np.max(np.abs(expected - actual)) <= 1e-9


def test_review_and_decline_catch_fraud(demo_run: DemoRun) -> None:
    """Flagged transactions are far more often fraud than the base rate of the window."""
    replayed = demo_run.summary["replay"]
    base_rate = replayed["frauds"] / replayed["decisions"]
    assert replayed["precision"] > 5 * base_rate
